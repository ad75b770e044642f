"""The aggregated API through the real API server's aggregator: discovery, live usage,
kubeconfigs minted per caller, authentication and authorisation from the attacker's
side, errors, and a clean exit from discovery."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client

from kubenova_operator.shim.tls import generate

from .harness import Cluster, create_tenants, eventually

POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
    - name: app
      image: registry.example/app:1
      resources:
        requests: {{cpu: 250m, memory: 64Mi}}
        limits: {{cpu: 500m, memory: 128Mi}}
"""


@pytest.fixture(scope="module")
async def usage_tenants(cluster: Cluster, operator: OperatorProcess, api: client.ApiClient) -> None:
    budget = {"hard": {"requests.cpu": "2", "requests.memory": "1Gi", "pods": "10"}}
    await create_tenants(
        api,
        {
            name: {"owners": [{"kind": "User", "name": owner}], "budget": budget}
            for name, owner in (("sha", "sally"), ("shb", "sid"))
        },
    )
    cluster.kubectl(
        "wait", "--for=condition=Available", "--timeout=60s", "apiservice/v1alpha1.api.kubenova.io"
    )


def _json(cluster: Cluster, *args: str) -> dict[str, object]:
    return dict(json.loads(cluster.kubectl(*args, "-o", "json").stdout))


@pytest.mark.usefixtures("usage_tenants")
async def test_discovery_and_table(cluster: Cluster) -> None:
    resources = cluster.kubectl("api-resources", "--api-group=api.kubenova.io").stdout
    assert "tenantusages" in resources and "kubeconfigs" in resources
    table = cluster.kubectl("get", "tenantusages").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "CPU",
        "REQUESTS",
        "MEMORY",
        "REQUESTS",
        "PODS",
        "NAMESPACES",
        "PROJECTS",
    ]
    assert any(line.startswith("sha ") for line in table[1:])


@pytest.mark.usefixtures("usage_tenants")
async def test_kubectl_explain_reads_the_aggregated_openapi(cluster: Cluster) -> None:
    # The aggregator downloads /openapi/v3 of an APIService once it is available.
    async def explained() -> str | None:
        result = cluster.kubectl("explain", "tenantusages.namespaces", check=False)
        return result.stdout if result.returncode == 0 else None

    text = await eventually(
        explained, deadline=120, interval=2, what="kubectl explain tenantusages"
    )
    assert text is not None and "Usage per namespace" in text and "pods" in text


@pytest.mark.usefixtures("usage_tenants")
async def test_usage_matches_the_quota_status(cluster: Cluster, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    # The controller-manager creates each namespace's default ServiceAccount, which
    # admission needs before the first pod.
    await eventually(
        lambda: core.read_namespaced_service_account("default", "sha-apps"),
        deadline=30,
        what="the default ServiceAccount",
    )
    for name in ("one", "two"):
        cluster.kubectl("apply", "-n", "sha-apps", "-f", "-", input=POD.format(name=name))

    async def counted() -> dict[str, str] | None:
        quota = await core.read_namespaced_resource_quota("kubenova-quota", "sha-apps")
        used = dict(quota.status.used or {})
        return used if used.get("pods") == "2" else None

    used = await eventually(counted, deadline=60, what="the controller-manager to count pods")
    usage = _json(cluster, "get", "tenantusage", "sha")
    assert usage["kind"] == "TenantUsage"
    ns = next(n for n in usage["namespaces"] if n["name"] == "sha-apps")  # type: ignore[attr-defined]
    assert ns["used"] == used
    assert ns["pods"] == 2
    assert usage["used"]["requests.cpu"] == "500m"  # type: ignore[index]
    assert usage["used"]["requests.memory"] == "128Mi"  # type: ignore[index]
    assert usage["budget"]["requests.cpu"] == "2"  # type: ignore[index]


@pytest.mark.usefixtures("usage_tenants")
def test_owner_gets_a_kubeconfig_other_tenants_get_403(cluster: Cluster, tmp_path: Path) -> None:
    got = cluster.kubectl(
        "--as=sally",
        "get",
        "kubeconfigs",
        "-n",
        "sha-owner",
        "owner",
        "-o",
        "jsonpath={.kubeconfig}",
    )
    kubeconfig = tmp_path / "sally"
    kubeconfig.write_text(got.stdout)
    assert yaml.safe_load(got.stdout)["contexts"][0]["context"]["namespace"] == "sha-apps"
    works = cluster.kubectl(
        "--kubeconfig", str(kubeconfig), "get", "pods", "-n", "sha-apps", check=False
    )
    assert works.returncode == 0, works.stderr
    # ... and her own usage, but not another tenant's.
    assert cluster.kubectl("--as=sally", "get", "tenantusage", "sha", check=False).returncode == 0
    for args in (("get", "kubeconfigs", "-n", "sha-owner", "owner"), ("get", "tenantusage", "sha")):
        denied = cluster.kubectl("--as=sid", *args, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    denied = cluster.kubectl("--as=nobody", "get", "tenantusages", check=False)
    assert "forbidden" in denied.stderr.lower()


@pytest.mark.usefixtures("usage_tenants")
def test_direct_requests_without_the_proxy_certificate_get_401(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    """Forged X-Remote-User headers mean nothing without the front-proxy certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{operator.shim_port}/apis/api.kubenova.io/v1alpha1/tenantusages"
    request = urllib.request.Request(
        url, headers={"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=10)
    assert refused.value.code == 401
    body = json.loads(refused.value.read())
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"


@pytest.mark.usefixtures("usage_tenants")
@pytest.mark.parametrize(
    ("path", "code", "text"),
    [
        ("/apis/api.kubenova.io/v1alpha1/widgets", "NotFound", "could not find"),
        (
            "/apis/api.kubenova.io/v1alpha1/tenantusages/Not_A_Name",
            "BadRequest",
            "not a valid tenant name",
        ),
        ("/apis/api.kubenova.io/v1alpha1/tenantusages/ghost", "NotFound", "not found"),
        (
            "/apis/api.kubenova.io/v1alpha1/tenantusages?watch=true",
            "MethodNotAllowed",
            "watch is not supported on tenantusages",
        ),
        (
            "/apis/api.kubenova.io/v1alpha1/namespaces/sha-owner/kubeconfigs",
            "MethodNotAllowed",
            "list is not supported on kubeconfigs",
        ),
    ],
    ids=["unknown-resource", "malformed-name", "missing", "watch", "list-kubeconfigs"],
)
def test_bad_requests_get_a_status(cluster: Cluster, path: str, code: str, text: str) -> None:
    result = cluster.kubectl("get", "--raw", path, check=False)
    assert result.returncode != 0
    assert f"({code})" in result.stderr and text in result.stderr, result.stderr


@pytest.mark.usefixtures("usage_tenants")
async def test_serving_certificate_rotates_without_a_restart(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    """Replace the shared serving certificate (as a renewal would): the shim picks it up,
    re-publishes the APIService caBundle, and kubectl keeps working, same process."""
    core = client.CoreV1Api(api)
    pid = operator.proc.pid if operator.proc else None
    fresh = generate(
        [
            "kubenova-api.kubenova-system.svc",
            "kubenova-api.kubenova-system.svc.cluster.local",
            "localhost",
            "127.0.0.1",
        ]
    )
    assert fresh.ca_pem is not None
    await core.patch_namespaced_secret(
        "kubenova-api-tls",
        "kubenova-system",
        {
            "data": {
                "tls.crt": base64.b64encode(fresh.cert_pem).decode(),
                "tls.key": base64.b64encode(fresh.key_pem).decode(),
                "ca.crt": base64.b64encode(fresh.ca_pem).decode(),
            }
        },
    )
    wanted = base64.b64encode(fresh.ca_pem).decode()

    async def republished() -> bool:
        result = cluster.kubectl(
            "get", "apiservice", "v1alpha1.api.kubenova.io", "-o", "jsonpath={.spec.caBundle}"
        )
        return result.stdout == wanted

    await eventually(republished, deadline=30, what="the new CA in the APIService")

    async def served() -> bool:
        return cluster.kubectl("get", "tenantusage", "sha", check=False).returncode == 0

    await eventually(served, deadline=30, what="the API to answer with the new certificate")
    assert operator.proc is not None and operator.proc.pid == pid


@pytest.mark.usefixtures("usage_tenants")
async def test_group_leaves_discovery_when_the_operator_stops(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    operator.stop()
    try:

        async def gone() -> bool:
            result = cluster.kubectl("api-resources", check=False)
            return result.returncode == 0 and "tenantusages" not in result.stdout

        await eventually(gone, deadline=30, what="api.kubenova.io to leave discovery")
    finally:
        operator.start()

    async def available() -> bool:
        result = cluster.kubectl(
            "get",
            "apiservice",
            "v1alpha1.api.kubenova.io",
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Available")].status}',
            check=False,
        )
        return result.stdout == "True"

    await eventually(available, deadline=60, what="the APIService to be Available again")
