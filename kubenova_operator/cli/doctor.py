"""`kubectl kubenova doctor`: is Kubenova installed and working, and what to fix.

Each check reads one object with the caller's credentials; judging it is pure (below
`gather`), so the rules are unit-tested."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ..api.common import parse_time
from ..shim.registration import APISERVICE_NAME
from .kube import Denied, Kube, Permission, guarded

CRDS = ("tenants", "projects", "kubeconfigrequests", "capsulesyncs", "velasyncs")
CAPSULE_CRD = "tenants.capsule.clastix.io"
CAPSULE_PROXY_CRD = "proxysettings.capsule.clastix.io"
VELA_CRD = "applications.core.oam.dev"
OPERATOR = "kubenova-operator"

Check = dict[str, Any]
Found = dict[str, Any] | None | Denied  # the object, None when absent (404), or Denied


def check(name: str, status: str, found: str, fix: str | None = None) -> Check:
    return {"check": name, "status": status, "found": found, "fix": fix}


def denied_check(name: str, denied: Denied) -> Check:
    return check(
        name,
        "warn",
        "cannot check: " + denied.permission.describe() + " is not allowed",
        f"ask for that permission (`{denied.permission.can_i()}`) or run as a system owner",
    )


def plugin_version() -> str:
    try:
        return metadata.version("kubenova-operator")
    except metadata.PackageNotFoundError:
        return "unknown"


def crd_check(crd: str, found: Found) -> Check:
    if isinstance(found, Denied):
        return denied_check(f"CRD {crd}", found)
    if found is None:
        return check(
            f"CRD {crd}", "fail", "not installed", "install the CRDs: kubectl apply -f crds/"
        )
    versions = [v["name"] for v in found["spec"]["versions"] if v.get("served")]
    established = any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (found.get("status") or {}).get("conditions") or []
    )
    if not established:
        return check(f"CRD {crd}", "fail", "not established", "see kubectl describe crd " + crd)
    return check(f"CRD {crd}", "ok", "served: " + ", ".join(versions))


def apiservice_check(found: Found) -> Check:
    name = f"APIService {APISERVICE_NAME}"
    if isinstance(found, Denied):
        return denied_check(name, found)
    if found is None:
        return check(
            name,
            "fail",
            "not registered",
            "the operator registers it at start: is the operator running?",
        )
    for cond in (found.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Available":
            if cond.get("status") == "True":
                return check(name, "ok", "Available")
            return check(
                name,
                "fail",
                f"not available ({cond.get('reason')}): {cond.get('message')}",
                "tenant usage and on-demand kubeconfigs need it: check the operator's "
                "Service and its log",
            )
    return check(name, "warn", "no Available condition yet", "wait a few seconds and re-run")


def lease_check(found: Found, now: datetime) -> Check:
    name = "operator leader (Lease kubenova-operator)"
    if isinstance(found, Denied):
        return denied_check(name, found)
    if found is None:
        return check(name, "fail", "no Lease: no operator has ever led", "start the operator")
    spec = found.get("spec") or {}
    holder = spec.get("holderIdentity")
    renewed = parse_time(spec.get("renewTime"))
    duration = int(spec.get("leaseDurationSeconds") or 15)
    if not holder or renewed is None:
        return check(name, "fail", "no holder", "start the operator; see its log")
    ago = int((now - renewed).total_seconds())
    if ago > 2 * duration:
        return check(
            name,
            "fail",
            f"{holder}, but not renewed for {ago}s (lease {duration}s)",
            "the leader is gone or stuck: check the operator's pods and log",
        )
    return check(name, "ok", f"{holder}, renewed {max(ago, 0)}s ago")


def deployment_check(found: Found) -> Check:
    name = f"operator Deployment {OPERATOR}"
    if isinstance(found, Denied):
        return denied_check(name, found)
    if found is None:
        return check(
            name,
            "warn",
            "none in this namespace (running outside the cluster?)",
            "install it (docs/install.md), or pass --namespace where it runs",
        )
    status = found.get("status") or {}
    want = (found.get("spec") or {}).get("replicas", 1)
    readyn = status.get("readyReplicas") or 0
    images = [c.get("image") for c in found["spec"]["template"]["spec"]["containers"]]
    version = ", ".join(str(i).rsplit(":", 1)[-1] for i in images)
    if readyn < 1:
        return check(
            name,
            "fail",
            f"0/{want} ready (version {version})",
            "kubectl describe deployment " + OPERATOR,
        )
    return check(name, "ok", f"{readyn}/{want} ready, version {version}")


def peer_check(name: str, found: Found, missing: str) -> Check:
    if isinstance(found, Denied):
        return denied_check(name, found)
    if found is None:
        return check(name, "warn", "not detected", missing)
    labels = found["metadata"].get("labels") or {}
    version = labels.get("app.kubernetes.io/version") or ", ".join(
        v["name"] for v in found["spec"]["versions"] if v.get("served")
    )
    return check(name, "ok", f"installed ({version})")


def proxy_check(crd: Found, deployment: Found) -> Check:
    url = None
    if isinstance(deployment, dict):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env") or []:
                if env.get("name") == "KUBENOVA_CAPSULE_PROXY_URL":
                    url = env.get("value")
    if url:
        return check("capsule-proxy", "ok", f"kubeconfigs point at {url}")
    if isinstance(crd, dict):
        return check(
            "capsule-proxy",
            "warn",
            "installed, but the operator has no KUBENOVA_CAPSULE_PROXY_URL",
            "set it so tenants' kubeconfigs go through the proxy (docs/integrations.md)",
        )
    return check(
        "capsule-proxy",
        "warn",
        "not detected: kubeconfigs point at the API server",
        "optional: install capsule-proxy so tenants can list their own namespaces",
    )


# --- reading (I/O) --------------------------------------------------------------------


async def _read(call: Callable[[], Awaitable[Any]], permission: Permission, kube: Kube) -> Found:
    try:
        obj = await guarded(call(), permission)
    except Denied as denied:
        return denied
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(kube.api.sanitize_for_serialization(obj))


async def gather(kube: Kube, namespace: str) -> list[Check]:
    ext = client.ApiextensionsV1Api(kube.api)

    def crd(name: str) -> Awaitable[Found]:
        return _read(
            lambda: ext.read_custom_resource_definition(name),
            Permission("get", "customresourcedefinitions", "apiextensions.k8s.io", name=name),
            kube,
        )

    checks: list[Check] = []
    try:
        version = await client.VersionApi(kube.api).get_code()
        checks.append(check("Kubernetes API", "ok", f"{version.git_version}"))
    except ApiException as exc:
        checks.append(check("Kubernetes API", "fail", f"{exc.status} {exc.reason}"))
        return checks
    checks.append(check("kubectl-kubenova", "ok", plugin_version()))
    for plural in CRDS:
        checks.append(crd_check(f"{plural}.kubenova.io", await crd(f"{plural}.kubenova.io")))
    deployment = await _read(
        lambda: client.AppsV1Api(kube.api).read_namespaced_deployment(OPERATOR, namespace),
        Permission("get", "deployments", "apps", namespace=namespace, name=OPERATOR),
        kube,
    )
    checks.append(deployment_check(deployment))
    lease = await _read(
        lambda: client.CoordinationV1Api(kube.api).read_namespaced_lease(OPERATOR, namespace),
        Permission("get", "leases", "coordination.k8s.io", namespace=namespace, name=OPERATOR),
        kube,
    )
    checks.append(lease_check(lease, datetime.now(UTC)))
    apiservice = await _read(
        lambda: client.ApiregistrationV1Api(kube.api).read_api_service(APISERVICE_NAME),
        Permission("get", "apiservices", "apiregistration.k8s.io", name=APISERVICE_NAME),
        kube,
    )
    checks.append(apiservice_check(apiservice))
    checks.append(
        peer_check(
            "Capsule",
            await crd(CAPSULE_CRD),
            "optional: Kubenova applies its own guardrails; install Capsule v0.14 for "
            "namespace self-service (docs/integrations.md)",
        )
    )
    checks.append(proxy_check(await crd(CAPSULE_PROXY_CRD), deployment))
    checks.append(
        peer_check(
            "KubeVela",
            await crd(VELA_CRD),
            "optional: install vela-core (v1.10) to deploy Applications in projects",
        )
    )
    return checks
