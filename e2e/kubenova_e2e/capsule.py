"""Capsule v0.14.0 and capsule-proxy v0.14.0 as local processes, for the tests and the
demo: the real controller and proxy, run out of cluster on loopback.

- Capsule's CRDs come from its module's charts/capsule/crds (the version e2e/capsule
  pins). Its controller runs with KUBECONFIG, NAMESPACE and SERVICE_ACCOUNT, and makes
  its own webhook configurations from the CapsuleConfiguration written here: url
  webhooks on 127.0.0.1 with a CA the harness makes (`enableTLSReconciler: false`),
  for the hooks Kubenova meets (namespaces, tenants, tenant owners, the
  configuration itself), with the chart's failure policies. `nodeMetadata` is always
  set: without it Capsule's configuration webhook panics on UPDATE.
- Capsule binds :10080 (health) on all interfaces and capsule-proxy :8081: one of
  each per host. A file lock in the cache serialises them across test sessions.
- capsule-proxy authenticates with a bearer-token kubeconfig of its own ServiceAccount
  (it panics on a client-certificate one) bound to the chart's ClusterRole, and runs
  with --enable-reflector, so an identity sees the namespaces where it has RoleBindings
  (how Kubenova's readonly and developer credentials see theirs).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .build import CAPSULE_MODULE, CAPSULE_PROXY_SOURCE, cache_dir, capsule_binary, module_dir
from .controlplane import ControlPlaneError, apply_manifest, free_port, kubectl, wait_established
from .kubevela import Peer
from .pki import CA, write_pair

CAPSULE_NAMESPACE = "capsule-system"
CAPSULE_SA = "capsule"
PROXY_SA = "capsule-proxy"
CONFIGURATION = "default"
CAPSULE_HEALTH_PORT = 10080  # fixed by Capsule, on all interfaces
# Capsule's chart failure policies: namespaces and tenants Fail, the configuration Ignore.
_HOOKS: list[tuple[str, str, str, str, list[dict[str, Any]], str]] = [
    # (kind, name, path, failurePolicy, rules, sideEffects)
    (
        "validating",
        "namespaces.validating.projectcapsule.dev",
        "/namespaces/validating",
        "Fail",
        [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["namespaces", "namespaces/status", "namespaces/finalize"],
                "scope": "*",
            }
        ],
        "None",
    ),
    (
        "validating",
        "tenants.validating.projectcapsule.dev",
        "/tenants/validating",
        "Fail",
        [
            {
                "apiGroups": ["capsule.clastix.io"],
                "apiVersions": ["v1beta2"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["tenants"],
                "scope": "Cluster",
            }
        ],
        "None",
    ),
    (
        "validating",
        "owners.validating.projectcapsule.dev",
        "/tenantowners/validating",
        "Fail",
        [
            {
                "apiGroups": ["capsule.clastix.io"],
                "apiVersions": ["v1beta2"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["tenantowners"],
                "scope": "Cluster",
            }
        ],
        "None",
    ),
    (
        "validating",
        "config.validating.projectcapsule.dev",
        "/config/validating",
        "Ignore",
        [
            {
                "apiGroups": ["capsule.clastix.io"],
                "apiVersions": ["v1beta2"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["capsuleconfigurations"],
                "scope": "Cluster",
            }
        ],
        "None",
    ),
    (
        "mutating",
        "namespaces.mutating.projectcapsule.dev",
        "/namespaces/mutating",
        "Fail",
        [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["namespaces"],
                "scope": "*",
            }
        ],
        "NoneOnDryRun",
    ),
    (
        "mutating",
        "tenants.mutating.projectcapsule.dev",
        "/tenants/mutating",
        "Fail",
        [
            {
                "apiGroups": ["capsule.clastix.io"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["tenants"],
                "scope": "Cluster",
            }
        ],
        "None",
    ),
]


def capsule_dir() -> Path:
    """Capsule's module (charts included) at the version e2e/capsule pins."""
    return module_dir(CAPSULE_MODULE, "github.com/projectcapsule/capsule")


def install_capsule_crds(kubeconfig: Path) -> None:
    crds = capsule_dir() / "charts" / "capsule" / "crds"
    for path in sorted(crds.glob("*.yaml")):
        kubectl("apply", "--server-side", "-f", str(path), kubeconfig=kubeconfig)
    wait_established(
        kubeconfig, "crd/tenants.capsule.clastix.io", "crd/capsuleconfigurations.capsule.clastix.io"
    )
    deadline = time.monotonic() + 60
    # kopf (in a running operator) rescans a group's discovery on each CRD event of that
    # group; the last event can come before discovery lists the new kinds, and then kopf
    # does not watch them until a restart (the operator reads Capsule Tenants Capsule has
    # not reported on directly, but heals hand edits from the watch). Once discovery
    # lists Capsule's Tenant, one more CRD event makes the rescan see it, as a later
    # CRD change would in a real cluster.
    while (
        "tenants"
        not in kubectl(
            "get", "--raw", "/apis/capsule.clastix.io/v1beta2", kubeconfig=kubeconfig, check=False
        ).stdout
    ):
        if time.monotonic() > deadline:
            raise ControlPlaneError("discovery does not list Capsule's Tenant")
        time.sleep(0.5)
    kubectl(
        "annotate",
        "--overwrite",
        "crd/tenants.capsule.clastix.io",
        f"kubenova.io/e2e-discovered={time.time():.0f}",
        kubeconfig=kubeconfig,
    )


def install_proxy_crds(kubeconfig: Path) -> None:
    crds = CAPSULE_PROXY_SOURCE / "charts" / "capsule-proxy" / "crds"
    for path in sorted(crds.glob("*.yaml")):
        kubectl("apply", "--server-side", "-f", str(path), kubeconfig=kubeconfig)


def capsule_configuration(
    webhook_url: str, ca_pem: bytes, administrators: list[dict[str, str]]
) -> dict[str, Any]:
    """The CapsuleConfiguration a cluster admin writes (what Kubenova expects of it:
    docs/integrations.md): Kubenova's operator among the administrators; Kubenova
    itself adds its tenants' groups to spec.users."""
    client = {"url": webhook_url, "caBundle": base64.b64encode(ca_pem).decode()}

    def hooks(kind: str) -> list[dict[str, Any]]:
        out = []
        for hook_kind, name, path, policy, rules, side_effects in _HOOKS:
            if hook_kind != kind:
                continue
            hook: dict[str, Any] = {
                "name": name,
                "admissionReviewVersions": ["v1", "v1beta1"],
                "path": path,
                "failurePolicy": policy,
                "matchPolicy": "Exact" if "tenants" in name else "Equivalent",
                "rules": rules,
                "sideEffects": side_effects,
                "timeoutSeconds": 10,
            }
            if kind == "mutating":
                hook["reinvocationPolicy"] = "Never"
            out.append(hook)
        return out

    return {
        "apiVersion": "capsule.clastix.io/v1beta2",
        "kind": "CapsuleConfiguration",
        "metadata": {"name": CONFIGURATION},
        "spec": {
            "cacheInvalidation": "0h30m0s",
            "rbac": {},
            "administrators": administrators,
            "users": [{"kind": "Group", "name": "projectcapsule.dev"}],
            "enableTLSReconciler": False,
            "forceTenantPrefix": False,
            "protectedNamespaceRegex": "",
            "nodeMetadata": {
                "forbiddenLabels": {"denied": [], "deniedRegex": ""},
                "forbiddenAnnotations": {"denied": [], "deniedRegex": ""},
            },
            "overrides": {
                "TLSSecretName": "capsule-tls",
                "mutatingWebhookConfigurationName": "capsule-mutating-webhook-configuration",
                "validatingWebhookConfigurationName": "capsule-validating-webhook-configuration",
            },
            "admission": {
                "validating": {
                    "name": "capsule-dynamic-webhook",
                    "client": client,
                    "webhooks": hooks("validating"),
                },
                "mutating": {
                    "name": "capsule-dynamic-webhook",
                    "client": client,
                    "webhooks": hooks("mutating"),
                },
            },
        },
    }


@contextlib.contextmanager
def host_lock(what: str) -> Iterator[None]:
    """Held while a peer that binds a fixed port runs: one per host."""
    path = cache_dir() / f"{what}.host.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def try_host_lock(stack: contextlib.ExitStack, what: str, timeout: float) -> bool:
    """host_lock(what), waited for at most `timeout` seconds; held until `stack`
    closes. False: another process (a test session, another `make run`) holds it."""
    path = cache_dir() / f"{what}.host.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = stack.enter_context(path.open("w"))
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)


def _wait_http(peer: Peer, url: str, timeout: float, context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        peer.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise ControlPlaneError(f"{peer.name} not ready at {url} after {timeout}s:\n{peer.tail()}")


class Capsule(Peer):
    """Capsule's controller: its webhooks on a free loopback port, TLS from a CA made
    here. `start()` installs the CRDs and the CapsuleConfiguration first."""

    name = "capsule"

    def __init__(
        self, kubeconfig: Path, workdir: Path, administrators: list[dict[str, str]]
    ) -> None:
        super().__init__(workdir)
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.administrators = administrators
        self.webhook_port = free_port()
        self.ca = CA.create("capsule-webhook-ca")
        self.cert_dir = workdir / "capsule-certs"
        self.restarts = 0

    def install(self) -> None:
        install_capsule_crds(self.kubeconfig)
        kubectl("create", "namespace", CAPSULE_NAMESPACE, kubeconfig=self.kubeconfig, check=False)
        config = capsule_configuration(
            f"https://127.0.0.1:{self.webhook_port}",
            self.ca.cert_pem,
            self.administrators,
        )
        apply_manifest(yaml.safe_dump(config), self.kubeconfig)

    def start(self, timeout: float = 120.0) -> None:
        binary = capsule_binary()
        self.cert_dir.mkdir(exist_ok=True)
        cert, key = self.ca.issue("capsule-webhook", hosts=("127.0.0.1",), server=True)
        write_pair(self.cert_dir, "tls", cert, key)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._spawn(
            [
                str(binary),
                f"--webhook-port={self.webhook_port}",
                f"--webhook-cert-path={self.cert_dir}",
                "--webhook-cert-name=tls.crt",
                "--webhook-cert-key=tls.key",
                f"--metrics-addr=127.0.0.1:{free_port()}",
                "--enable-leader-election=false",
                f"--configuration-name={CONFIGURATION}",
            ],
            {
                "KUBECONFIG": str(self.kubeconfig),
                "NAMESPACE": CAPSULE_NAMESPACE,
                "SERVICE_ACCOUNT": CAPSULE_SA,
            },
        )
        _wait_http(self, f"http://127.0.0.1:{CAPSULE_HEALTH_PORT}/readyz", timeout)
        insecure = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        _wait_http(self, f"https://127.0.0.1:{self.webhook_port}/healthz", timeout, insecure)

    def ensure_running(self) -> None:
        """Installed and started, whatever ran before."""
        if self.proc is None or self.proc.poll() is not None:
            self.install()
            self.start()

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()


def service_account_kubeconfig(
    kubeconfig: Path, namespace: str, name: str, path: Path, seconds: int = 86400
) -> Path:
    """A bearer-token kubeconfig for ServiceAccount `namespace/name` (TokenRequest),
    against the same API server and CA as `kubeconfig`."""
    token = kubectl(
        "create",
        "token",
        name,
        "-n",
        namespace,
        f"--duration={seconds}s",
        kubeconfig=kubeconfig,
    ).stdout.strip()
    admin = yaml.safe_load(kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "local", "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


_PROXY_RBAC = f"""apiVersion: v1
kind: ServiceAccount
metadata:
  name: {PROXY_SA}
  namespace: {CAPSULE_NAMESPACE}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: capsule-proxy
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["get", "list", "watch"]
  - nonResourceURLs: ["*"]
    verbs: ["get"]
  - apiGroups: [""]
    resources: [users, groups, serviceaccounts, userextras/*]
    verbs: ["impersonate"]
  - apiGroups: ["authorization.k8s.io"]
    resources: ["selfsubjectaccessreviews"]
    verbs: ["create", "get", "list", "watch"]
  - apiGroups: ["authentication.k8s.io"]
    resources: ["tokenreviews"]
    verbs: ["create"]
  - apiGroups: ["authorization.k8s.io"]
    resources: ["subjectaccessreviews"]
    verbs: ["create"]
  - apiGroups: ["capsule.clastix.io"]
    resources: [proxysettings/status, globalproxysettings/status]
    verbs: ["update", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: capsule-proxy
subjects:
  - kind: ServiceAccount
    name: {PROXY_SA}
    namespace: {CAPSULE_NAMESPACE}
roleRef:
  kind: ClusterRole
  name: capsule-proxy
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: capsule-proxy
  namespace: {CAPSULE_NAMESPACE}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: [""]
    resources: ["configmaps", "endpoints"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: capsule-proxy
  namespace: {CAPSULE_NAMESPACE}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: capsule-proxy
subjects:
  - kind: ServiceAccount
    name: {PROXY_SA}
    namespace: {CAPSULE_NAMESPACE}
"""


class CapsuleProxy(Peer):
    """capsule-proxy on https://127.0.0.1:<port>, serving certificate from its own CA
    (`ca_pem`, what kubeconfigs through it trust)."""

    name = "capsule-proxy"

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        super().__init__(workdir)
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.port = free_port()
        self.ca = CA.create("capsule-proxy-ca")
        self.url = f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem

    def start(self, binary: Path, timeout: float = 120.0) -> None:
        install_proxy_crds(self.kubeconfig)
        apply_manifest(_PROXY_RBAC, self.kubeconfig)
        own = service_account_kubeconfig(
            self.kubeconfig, CAPSULE_NAMESPACE, PROXY_SA, self.workdir / "capsule-proxy.kubeconfig"
        )
        cert, key = self.ca.issue("capsule-proxy", hosts=("127.0.0.1", "localhost"), server=True)
        cert_path, key_path = write_pair(self.workdir, "capsule-proxy-tls", cert, key)
        self._spawn(
            [
                str(binary),
                f"--listening-port={self.port}",
                "--enable-ssl=true",
                f"--ssl-cert-path={cert_path}",
                f"--ssl-key-path={key_path}",
                f"--capsule-configuration-name={CONFIGURATION}",
                "--enable-reflector=true",
                f"--metrics-addr=127.0.0.1:{free_port()}",
                f"--webhook-port={free_port()}",
            ],
            {"KUBECONFIG": str(own), "NAMESPACE": CAPSULE_NAMESPACE},
        )
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        _wait_http(self, f"{self.url}/version", timeout, context)
