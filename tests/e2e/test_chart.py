"""The Helm chart (charts/kubenova) with the real Helm (built from helm.sh/helm/v3 like
the other peers): `helm lint --strict`; `helm template` valid against the Kubernetes
schemas and the same objects as `kubectl kustomize manifests/` but for what the values
ask; and `helm install`, `helm upgrade`, `helm uninstall` on a control plane of its own
(the session's already holds the kustomize install, whose cluster-wide objects Helm would
refuse to adopt), with the operator running as the chart's ServiceAccount.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubenova_e2e.build import REPO, controlplane_binary, helm_binary
from kubenova_e2e.controlplane import LocalControlPlane, kubectl, wait_established
from kubenova_e2e.platform import OperatorProcess, platform_objects

from .harness import until_healthy

CHART = REPO / "charts" / "kubenova"
K8S_VERSION = "1.34.0"
# Labels Helm charts put on objects and kustomize does not.
HELM_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
}
DEFAULT_GROUPS = "kubenova:admins,kubenova:ops"
# kustomize's namespace transformer does not know these kinds are cluster-scoped and
# gives them a metadata.namespace that the API server ignores.
CLUSTER_SCOPED = {
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "APIService",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "Namespace",
}
CHANGED = {
    "image": {"repository": "registry.example.com/kubenova", "tag": "9.9.9"},
    "replicas": 3,
    "resources": {"requests": {"cpu": "200m", "memory": "300Mi"}},
    "logLevel": "DEBUG",
    "resyncSeconds": 30,
    "relistSeconds": 600,
    "capsuleProxy": {"url": "https://capsule-proxy.example.com:9001", "caSecret": "capsule/ca"},
    "otlp": {"endpoint": "http://otel-collector.observability:4318"},
    "systemOwnerGroups": ["platform-team"],
    "serviceMonitor": {"enabled": True},
}


def helm(
    *args: str, home: Path, kubeconfig: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The real helm, with its cache/config/data under `home` (never the user's)."""
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    result = subprocess.run(
        [str(helm_binary()), *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
    return result


def write_values(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def render(home: Path, namespace: str = "kubenova-system", *args: str) -> list[dict[str, Any]]:
    out = helm(
        "template", "kubenova", str(CHART), "-n", namespace, "--include-crds", *args, home=home
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def normalised(objects: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Objects by (kind, namespace, name), without Helm's labels and without the
    namespace kustomize gives cluster-scoped kinds."""
    out = {}
    for obj in json.loads(json.dumps(objects)):
        meta = obj["metadata"]
        if obj["kind"] in CLUSTER_SCOPED:
            meta.pop("namespace", None)
        for labels in (
            meta.get("labels"),
            obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels"),
        ):
            for label in HELM_LABELS & set(labels or {}):
                del labels[label]
        out[key(obj)] = obj
    return out


def container(objects: dict[tuple[str, str, str], dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for k, o in objects.items() if k[0] == "Deployment"]
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.fixture(scope="module")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm")


def test_the_chart_lints_strictly(helm_home: Path, tmp_path: Path) -> None:
    helm("lint", "--strict", str(CHART), home=helm_home)
    values = write_values(tmp_path / "values.yaml", CHANGED)
    helm("lint", "--strict", str(CHART), "-f", str(values), home=helm_home)


def test_the_packaged_chart_holds_the_files_not_links(helm_home: Path, tmp_path: Path) -> None:
    """crds/ and files/ link to crds/ and manifests/; `helm package` (what a chart
    repository serves) must carry their contents."""
    helm("package", str(CHART), "-d", str(tmp_path), home=helm_home)
    (packaged,) = tmp_path.glob("kubenova-*.tgz")
    with tarfile.open(packaged) as tar:
        member = tar.getmember("kubenova/crds/kubenova.io_tenants.yaml")
        assert member.isfile()
        content = tar.extractfile(member)
        assert content is not None
        assert content.read() == (REPO / "crds" / "kubenova.io_tenants.yaml").read_bytes()
        rbac = tar.extractfile("kubenova/files/operator-rbac.yaml")
        assert rbac is not None
        assert rbac.read() == (REPO / "manifests" / "operator" / "rbac.yaml").read_bytes()


@pytest.mark.parametrize("values", [{}, CHANGED], ids=["defaults", "changed"])
def test_the_rendered_objects_are_valid(
    helm_home: Path, tmp_path: Path, values: dict[str, Any]
) -> None:
    objects = render(
        helm_home, "kubenova-system", "-f", str(write_values(tmp_path / "v.yaml", values))
    )
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":  # a Prometheus Operator CRD, not in the schemas
            assert obj["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s"}]
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert any(o["kind"] == "ServiceMonitor" for o in objects) == bool(values)


def test_the_chart_renders_what_kustomize_does(helm_home: Path, tmp_path: Path) -> None:
    kustomized = normalised(platform_objects(tmp_path / "unused", deployment=True))
    charted = normalised(render(helm_home))
    # Helm does not create its release namespace (helm install --create-namespace, or
    # the namespace made beforehand with its Pod Security label: docs/install.md).
    namespace = kustomized.pop(("Namespace", "", "kubenova-system"))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert sorted(charted) == sorted(kustomized)
    # The one setting the chart always passes: the system-owner groups, so that the
    # binding and the operator cannot disagree.
    env = container(charted)["env"]
    assert {"name": "KUBENOVA_SYSTEM_OWNER_GROUPS", "value": DEFAULT_GROUPS} in env
    container(charted)  # exactly one
    (deployment_key,) = [k for k in charted if k[0] == "Deployment"]
    charted[deployment_key]["spec"]["template"]["spec"]["containers"][0]["env"] = [
        e for e in env if e["name"] != "KUBENOVA_SYSTEM_OWNER_GROUPS"
    ]
    for k, obj in kustomized.items():
        assert charted[k] == obj, k


def test_values_change_only_what_they_name(helm_home: Path, tmp_path: Path) -> None:
    default = normalised(render(helm_home))
    values = write_values(tmp_path / "values.yaml", CHANGED)
    changed = normalised(render(helm_home, "kubenova-system", "-f", str(values)))
    monitor = ("ServiceMonitor", "kubenova-system", "kubenova-operator")
    assert set(changed) - set(default) == {monitor}
    differing = {k for k in default if default[k] != changed[k]}
    (deployment_key,) = [k for k in default if k[0] == "Deployment"]
    binding = ("ClusterRoleBinding", "", "kubenova:system-owner")
    assert differing == {deployment_key, binding}
    assert changed[binding]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "platform-team"}
    ]
    assert changed[deployment_key]["spec"]["replicas"] == 3
    before, after = container(default), container(changed)
    assert after.pop("image") == "registry.example.com/kubenova:9.9.9"
    assert before.pop("image") == "ghcr.io/kubenova/operator:0.1.0"
    assert after.pop("resources") == CHANGED["resources"]
    before.pop("resources")
    env_before = before.pop("env")
    added = [e for e in after.pop("env") if e not in env_before]
    assert sorted(added, key=lambda e: e["name"]) == [
        {"name": "KUBENOVA_CAPSULE_PROXY_CA_SECRET", "value": "capsule/ca"},
        {"name": "KUBENOVA_CAPSULE_PROXY_URL", "value": "https://capsule-proxy.example.com:9001"},
        {"name": "KUBENOVA_LOG_LEVEL", "value": "DEBUG"},
        {"name": "KUBENOVA_RELIST_SECONDS", "value": "600"},
        {"name": "KUBENOVA_RESYNC_SECONDS", "value": "30"},
        {"name": "KUBENOVA_SYSTEM_OWNER_GROUPS", "value": "platform-team"},
        {
            "name": "OTEL_EXPORTER_OTLP_ENDPOINT",
            "value": "http://otel-collector.observability:4318",
        },
    ]
    assert after == before


def test_another_namespace_is_named_everywhere(helm_home: Path) -> None:
    text = yaml.safe_dump_all(render(helm_home, "platform"))
    assert "kubenova-system" not in text
    assert "system:serviceaccount:platform:kubenova-operator" in text


# --- install, upgrade, uninstall on a control plane -------------------------------------

RELEASE_NS = "kubenova-helm"  # not the default: the chart must follow its namespace


@pytest.fixture(scope="module")
def helm_plane() -> Iterator[LocalControlPlane]:
    plane = LocalControlPlane(controlplane_binary())
    plane.start(controllers=False)
    try:
        yield plane
    finally:
        plane.stop()


def k(plane: LocalControlPlane, *args: str, check: bool = True) -> str:
    return kubectl(*args, kubeconfig=plane.kubeconfig, check=check).stdout


async def test_install_upgrade_uninstall(
    helm_plane: LocalControlPlane, helm_home: Path, tmp_path: Path
) -> None:
    plane, kc = helm_plane, helm_plane.kubeconfig
    helm(
        "install", "kubenova", str(CHART), "-n", RELEASE_NS, "--create-namespace",
        home=helm_home, kubeconfig=kc,
    )  # fmt: skip
    crds = [f"crd/{p.stem.split('_', 1)[1]}.kubenova.io" for p in (CHART / "crds").glob("*.yaml")]
    wait_established(kc, *crds)
    plane.start_controllers()

    # The operator as a process, holding the chart's ServiceAccount's token.
    operator = OperatorProcess(kc, tmp_path, namespace=RELEASE_NS)
    operator.start()
    try:
        await until_healthy(operator)
        tenant = {
            "apiVersion": "kubenova.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": "charted"},
            "spec": {},
        }
        kubectl("apply", "--server-side", "-f", "-", input=json.dumps(tenant), kubeconfig=kc)
        k(plane, "wait", "--for=condition=Ready", "--timeout=90s", "tenant.kubenova.io/charted")
        request = {
            "apiVersion": "kubenova.io/v1alpha1",
            "kind": "KubeConfigRequest",
            "metadata": {"name": "charted", "namespace": "charted-owner"},
            "spec": {"role": "owner"},
        }
        kubectl("apply", "--server-side", "-f", "-", input=json.dumps(request), kubeconfig=kc)
        k(plane, "wait", "--for=condition=Ready", "--timeout=90s", "-n", "charted-owner",
          "kubeconfigrequest.kubenova.io/charted")  # fmt: skip
        secret = k(plane, "get", "kubeconfigrequest.kubenova.io/charted", "-n", "charted-owner",
                   "-o", "jsonpath={.status.secretName}")  # fmt: skip
        issued = k(
            plane,
            "get",
            "secret",
            secret,
            "-n",
            "charted-owner",
            "-o",
            "jsonpath={.data.kubeconfig}",
        )
        assert issued
        # The aggregated API answers through the API server, as the chart's identity serves it.
        usage = json.loads(
            k(plane, "get", "--raw", "/apis/api.kubenova.io/v1alpha1/tenantusages/charted")
        )
        assert usage["metadata"]["name"] == "charted"
    finally:
        operator.stop()
    log = operator.log.read_text(errors="replace")
    assert "Forbidden" not in log and " 403" not in log, operator.tail(80)

    # The harness replaced the chart's kubenova-api Service by an ExternalName one to
    # route the aggregated API to the local process; without it, the upgrade puts the
    # chart's back (Helm creates what its release lacks).
    k(plane, "delete", "service", "kubenova-api", "-n", RELEASE_NS)
    # An upgrade with changed values changes those objects in place.
    values = write_values(
        tmp_path / "values.yaml",
        {"systemOwnerGroups": ["platform-team"], "logLevel": "DEBUG", "replicas": 3},
    )
    helm(
        "upgrade",
        "kubenova",
        str(CHART),
        "-n",
        RELEASE_NS,
        "-f",
        str(values),
        home=helm_home,
        kubeconfig=kc,
    )
    subjects = k(
        plane,
        "get",
        "clusterrolebinding",
        "kubenova:system-owner",
        "-o",
        "jsonpath={.subjects[*].name}",
    )
    assert subjects == "platform-team"
    deployment = json.loads(
        k(plane, "get", "deployment", "kubenova-operator", "-n", RELEASE_NS, "-o", "json")
    )
    assert deployment["spec"]["replicas"] == 3
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "KUBENOVA_LOG_LEVEL", "value": "DEBUG"} in env
    service = k(plane, "get", "service", "kubenova-api", "-n", RELEASE_NS, "-o", "json")
    assert json.loads(service)["spec"]["type"] == "ClusterIP"
    assert (
        "REVISION: 2"
        in helm("status", "kubenova", "-n", RELEASE_NS, home=helm_home, kubeconfig=kc).stdout
    )

    # Uninstall removes what the release templated and keeps the CRDs (and so the
    # Tenants), as Helm does with crds/.
    helm("uninstall", "kubenova", "-n", RELEASE_NS, "--wait", home=helm_home, kubeconfig=kc)
    assert k(plane, "get", "clusterrole", "kubenova:operator", check=False) == ""
    assert (
        "NotFound"
        in kubectl(
            "get", "apiservice", "v1alpha1.api.kubenova.io", kubeconfig=kc, check=False
        ).stderr
    )
    assert (
        "NotFound"
        in kubectl(
            "get", "deployment", "kubenova-operator", "-n", RELEASE_NS, kubeconfig=kc, check=False
        ).stderr
    )
    assert k(plane, "get", "crd", *[c.removeprefix("crd/") for c in crds], "-o", "name").count(
        "\n"
    ) == len(crds)
    assert (
        k(plane, "get", "tenant.kubenova.io/charted", "-o", "name").strip()
        == "tenant.kubenova.io/charted"
    )
