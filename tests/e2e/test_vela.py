"""With KubeVela's real CRDs installed (from its Go module): Kubenova notices without a
restart, and the admission policy keeps app users from borrowing identities.

Runs last (file order): installing the CRDs changes what the other tests see."""

from __future__ import annotations

import pytest
from kubenova_e2e.kubevela import kubevela_crds
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    condition,
    create_tenants,
    must_condition,
    ready_at_generation,
    watch_until,
)

APPLICATION = """apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {name}
{annotations}spec:
  components:
    - name: web
      type: webservice
      properties:
        image: registry.example/web:1
"""


@pytest.fixture(scope="module")
async def vela(cluster: Cluster, operator: OperatorProcess, api: client.ApiClient) -> None:
    await create_tenants(api, {"vpa": {}})
    custom = client.CustomObjectsApi(api)
    for name, dev in (("web", "vic"), ("api", "ann")):
        await custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            "vpa-owner",
            "projects",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Project",
                "metadata": {"name": name, "namespace": "vpa-owner"},
                "spec": {"developers": [{"kind": "User", "name": dev}]},
            },
        )
        await watch_until(api, "projects", name, ready_at_generation, namespace="vpa-owner")
    cluster.kubectl("apply", "--server-side", "-f", str(kubevela_crds()))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/applications.core.oam.dev"
    )


def app(name: str, annotation: str | None = None) -> str:
    extra = f"  annotations:\n    {annotation}: someone-else\n" if annotation else ""
    return APPLICATION.format(name=name, annotations=extra)


@pytest.mark.usefixtures("vela")
async def test_kubevela_is_picked_up_without_a_restart(
    api: client.ApiClient, operator: OperatorProcess
) -> None:
    pid = operator.proc.pid if operator.proc else None
    sync = await watch_until(
        api,
        "velasyncs",
        "web",
        lambda o: (condition(o, "Available") or {}).get("status") == "True",
        namespace="vpa-owner",
        deadline=60,
    )
    assert must_condition(sync, "Available")["reason"] == "KubeVelaFound"
    assert operator.proc is not None and operator.proc.pid == pid


@pytest.mark.usefixtures("vela")
@pytest.mark.parametrize(
    "annotation",
    ["app.oam.dev/service-account-name", "app.oam.dev/username", "app.oam.dev/group"],
)
def test_impersonation_annotations_are_refused(cluster: Cluster, annotation: str) -> None:
    result = cluster.kubectl(
        "--as=vic",
        "create",
        "-n",
        "vpa-web",
        "-f",
        "-",
        input=app(f"sneaky-{annotation.rsplit('/', 1)[1]}", annotation),
        check=False,
    )
    assert result.returncode != 0
    assert (
        "Applications in Kubenova tenant namespaces may not set "
        "app.oam.dev/service-account-name, app.oam.dev/username or app.oam.dev/group"
        in result.stderr
    ), result.stderr


@pytest.mark.usefixtures("vela")
def test_app_user_deploys_in_own_project_only(cluster: Cluster) -> None:
    created = cluster.kubectl(
        "--as=vic", "create", "-n", "vpa-web", "-f", "-", input=app("shop"), check=False
    )
    assert created.returncode == 0, created.stderr
    other = cluster.kubectl(
        "--as=vic", "create", "-n", "vpa-api", "-f", "-", input=app("shop"), check=False
    )
    assert other.returncode != 0 and "forbidden" in other.stderr.lower(), other.stderr
    # The policy does not get in the way of the operator's own namespace-less work,
    # nor of Applications outside tenant namespaces.
    cluster.kubectl("create", "namespace", "vela-elsewhere", check=False)
    outside = cluster.kubectl(
        "create",
        "-n",
        "vela-elsewhere",
        "-f",
        "-",
        input=app("free", "app.oam.dev/username"),
        check=False,
    )
    assert outside.returncode == 0, outside.stderr
