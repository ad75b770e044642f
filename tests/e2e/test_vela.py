"""KubeVela, for real: its CRDs from its Go module, vela-core built from source, kwok's
fake node running the pods the real scheduler places.

Order matters (pytest runs a file top to bottom, and this file last): first only the
CRDs go in, and Kubenova must notice without a restart; then vela-core and kwok start
and Applications are deployed by app users and followed into Project and Tenant status.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubenova_e2e.kubevela import install_kubevela_crds, start_kubevela
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    condition,
    create_tenants,
    eventually,
    merge_patch,
    metric_value,
    must_condition,
    plugin,
    ready_at_generation,
    token_kubeconfig,
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
TENANT = "vpa"
OWNER_NS = f"{TENANT}-owner"
# The lifecycle project: two environments, a budget small enough to refuse a big pod.
STORE = "store"
STORE_DEV, STORE_PROD = f"{TENANT}-{STORE}-dev", f"{TENANT}-{STORE}-prod"
STORE_BUDGET = {"requests.cpu": "2", "limits.cpu": "4", "pods": "10"}


def project(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Project",
        "metadata": {"name": name, "namespace": OWNER_NS},
        "spec": spec,
    }


@pytest.fixture(scope="module")
async def vela(cluster: Cluster, operator: OperatorProcess, api: client.ApiClient) -> None:
    """Projects first, then only KubeVela's CRDs (no vela-core yet)."""
    await create_tenants(api, {TENANT: {"budget": {"hard": {"requests.cpu": "8", "pods": "40"}}}})
    custom = client.CustomObjectsApi(api)
    bodies = [
        project("web", developers=[{"kind": "User", "name": "vic"}]),
        project("api", developers=[{"kind": "User", "name": "ann"}]),
        project(
            STORE,
            environments=[{"name": "dev"}, {"name": "prod"}],
            budget={"hard": STORE_BUDGET},
        ),
    ]
    for body in bodies:
        await custom.create_namespaced_custom_object(GROUP, VERSION, OWNER_NS, "projects", body)
    for body in bodies:
        name = body["metadata"]["name"]
        await watch_until(api, "projects", name, ready_at_generation, namespace=OWNER_NS)
    install_kubevela_crds(cluster.kubeconfig)


@pytest.fixture(scope="module")
def vela_core(vela: None, cluster: Cluster, workdir: Path) -> Iterator[None]:
    """kwok's fake node, KubeVela's definitions, and vela-core itself."""
    peers = start_kubevela(cluster.kubeconfig, workdir)
    yield
    for peer in reversed(peers):
        peer.stop()


def app(name: str, annotation: str | None = None) -> str:
    extra = f"  annotations:\n    {annotation}: someone-else\n" if annotation else ""
    return APPLICATION.format(name=name, annotations=extra)


def webservice(name: str, image: str, **properties: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "core.oam.dev/v1beta1",
            "kind": "Application",
            "metadata": {"name": name},
            "spec": {
                "components": [
                    {
                        "name": name,
                        "type": "webservice",
                        "properties": {
                            "image": image,
                            "ports": [{"port": 80, "expose": True}],
                            **properties,
                        },
                    }
                ]
            },
        }
    )


def summary(sync: dict[str, Any], name: str) -> dict[str, Any] | None:
    for item in (sync.get("status") or {}).get("applications") or []:
        if item["name"] == name:
            return dict(item)
    return None


def counts(obj: dict[str, Any]) -> dict[str, Any]:
    return dict((obj.get("status") or {}).get("applications") or {})


# --- KubeVela's CRDs only ------------------------------------------------------------


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
        namespace=OWNER_NS,
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
        f"{TENANT}-web",
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
        "--as=vic", "create", "-n", f"{TENANT}-web", "-f", "-", input=app("shop"), check=False
    )
    assert created.returncode == 0, created.stderr
    other = cluster.kubectl(
        "--as=vic", "create", "-n", f"{TENANT}-api", "-f", "-", input=app("shop"), check=False
    )
    assert other.returncode != 0 and "forbidden" in other.stderr.lower(), other.stderr
    # The policy does not get in the way of Applications outside tenant namespaces.
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


@pytest.mark.usefixtures("vela")
async def test_project_footprint_and_delivery_defaults(
    cluster: Cluster, api: client.ApiClient
) -> None:
    """What VelaUX would have made of the project, and its delivery defaults, built by
    Kubenova once KubeVela is served; overridable in the Project spec."""
    for ns, env in ((STORE_DEV, "dev"), (STORE_PROD, "prod")):
        labels = json.loads(
            cluster.kubectl("get", "ns", ns, "-o", "jsonpath={.metadata.labels}").stdout
        )
        assert labels["namespace.oam.dev/env"] == f"{STORE}-{env}"
        assert labels["usage.oam.dev/control-plane"] == "env"
        binding = json.loads(
            cluster.kubectl(
                "get", "rolebinding", "kubevela:writer:application", "-n", ns, "-o", "json"
            ).stdout
        )
        assert binding["roleRef"]["name"] == "kubevela:writer:application"
        assert {"kind": "Group", "name": f"kubevela:project:{STORE}"} in [
            {k: s[k] for k in ("kind", "name")} for s in binding["subjects"]
        ]

    def get(kind: str, name: str) -> dict[str, Any] | None:
        got = cluster.kubectl(
            "get", f"{kind}.core.oam.dev", name, "-n", STORE_DEV, "-o", "json", check=False
        )
        return json.loads(got.stdout) if got.returncode == 0 else None

    async def workflow() -> dict[str, Any] | None:
        return get("workflows", "kubenova-promote")

    promote = await eventually(workflow, deadline=60, what="the default workflow")
    assert promote is not None
    assert [s["name"] for s in promote["steps"]] == ["deploy-dev", "approve-prod", "deploy-prod"]
    prod = get("policies", "kubenova-env-prod")
    assert prod is not None and prod["properties"]["namespace"] == STORE_PROD

    # Turned off in the Project spec: pruned; back on: rebuilt.
    await merge_patch(
        api,
        "projects",
        STORE,
        {"spec": {"delivery": {"defaultWorkflow": False}}},
        namespace=OWNER_NS,
    )

    async def gone() -> bool:
        return get("workflows", "kubenova-promote") is None and not get(
            "policies", "kubenova-env-dev"
        )

    await eventually(gone, deadline=60, what="default workflow pruned")
    await merge_patch(
        api,
        "projects",
        STORE,
        {"spec": {"delivery": {"defaultWorkflow": True}}},
        namespace=OWNER_NS,
    )
    await eventually(workflow, deadline=60, what="the default workflow rebuilt")


# --- vela-core running ---------------------------------------------------------------


def event_messages(cluster: Cluster, namespace: str, name: str, reason: str) -> str:
    """The messages of the Events with `reason` about the object `name`."""
    return cluster.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name},reason={reason}",
        "-o",
        "jsonpath={.items[*].message}",
    ).stdout.strip()


def deployer_token(cluster: Cluster, project_name: str) -> str:
    """The project's app user, as a real bearer token (TokenRequest API)."""
    return cluster.create_token(f"{project_name}-deployer", OWNER_NS)


def apply_as(
    cluster: Cluster, token: str, namespace: str, manifest: str
) -> subprocess.CompletedProcess[str]:
    """Server-side apply with only the token (the app user's create and update)."""
    return cluster.token_kubectl(
        token, "apply", "--server-side", "-n", namespace, "-f", "-", stdin=manifest
    )


@pytest.mark.usefixtures("vela_core")
async def test_application_lifecycle_is_followed(
    cluster: Cluster, api: client.ApiClient, operator: OperatorProcess
) -> None:
    token = deployer_token(cluster, STORE)
    created = apply_as(cluster, token, STORE_DEV, webservice("shop", "nginx:1.27"))
    assert created.returncode == 0, created.stderr

    def shop_at(revision: int) -> Any:
        def ok(sync: dict[str, Any]) -> bool:
            s = summary(sync, "shop")
            return bool(s and s["healthy"] and s.get("revisionNumber") == revision)

        return ok

    sync = await watch_until(api, "velasyncs", STORE, shop_at(1), namespace=OWNER_NS, deadline=180)
    shop = summary(sync, "shop")
    assert shop is not None
    assert shop["phase"] == "running" and shop["revision"] == "shop-v1", shop
    proj = await watch_until(
        api,
        "projects",
        STORE,
        lambda o: counts(o).get("healthy") == 1,
        namespace=OWNER_NS,
        deadline=30,
    )
    assert counts(proj) == {"total": 1, "healthy": 1, "progressing": 0, "failing": 0}
    # The summary leads to the pods (for logs) and to the revision history.
    pods = cluster.kubectl(
        "get", "pods", "-n", STORE_DEV, "-l", shop["podSelector"], "-o", "name"
    ).stdout.split()
    assert pods, "no pods match the summary's podSelector"

    # An update is a new revision, and the summary follows it.
    updated = apply_as(cluster, token, STORE_DEV, webservice("shop", "nginx:1.28"))
    assert updated.returncode == 0, updated.stderr
    sync = await watch_until(api, "velasyncs", STORE, shop_at(2), namespace=OWNER_NS, deadline=180)
    shop = summary(sync, "shop")
    assert shop is not None and shop["revision"] == "shop-v2"
    revisions = cluster.kubectl(
        "get",
        "applicationrevisions",
        "-n",
        STORE_DEV,
        "-l",
        shop["revisionsSelector"],
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ).stdout.split()
    assert sorted(revisions) == ["shop-v1", "shop-v2"]

    # The project's revision limit, lowered to 1: a third revision prunes the first
    # (vela-core reads such a limit only inline in an Application, Kubenova applies it).
    await merge_patch(
        api, "projects", STORE, {"spec": {"delivery": {"revisionLimit": 1}}}, namespace=OWNER_NS
    )
    third = apply_as(cluster, token, STORE_DEV, webservice("shop", "nginx:1.29"))
    assert third.returncode == 0, third.stderr
    await watch_until(api, "velasyncs", STORE, shop_at(3), namespace=OWNER_NS, deadline=180)

    async def history() -> list[str]:
        out = cluster.kubectl(
            "get",
            "applicationrevisions",
            "-n",
            STORE_DEV,
            "-l",
            "app.oam.dev/name=shop",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ).stdout.split()
        return sorted(out) if sorted(out) == ["shop-v2", "shop-v3"] else []

    await eventually(history, deadline=60, what="shop-v1 pruned, shop-v2 and shop-v3 kept")

    # The tenant sums its projects (web holds vic's "shop" from above, running too).
    tenant = await watch_until(
        api, "tenants", TENANT, lambda o: counts(o).get("healthy", 0) >= 1, deadline=60
    )
    assert counts(tenant)["total"] >= 1
    running = metric_value(
        operator.metrics(),
        "kubenova_applications",
        namespace=OWNER_NS,
        project=STORE,
        phase="running",
    )
    assert running == 1


@pytest.mark.usefixtures("vela_core")
async def test_failing_application_is_reported(cluster: Cluster, api: client.ApiClient) -> None:
    """Pods the quota refuses: the Deployment never becomes ready, the workflow waits,
    and past the stuck time (20 s here) the Application counts as failing."""
    token = deployer_token(cluster, STORE)
    created = apply_as(cluster, token, STORE_DEV, webservice("greedy", "nginx:1.27", cpu="8"))
    assert created.returncode == 0, created.stderr

    def failing(sync: dict[str, Any]) -> bool:
        s = summary(sync, "greedy")
        return bool(s and s["stuck"] and not s["healthy"])

    sync = await watch_until(api, "velasyncs", STORE, failing, namespace=OWNER_NS, deadline=120)
    greedy = summary(sync, "greedy")
    assert greedy is not None and greedy["phase"] == "runningWorkflow", greedy
    assert greedy["message"], greedy
    assert must_condition(sync, "ApplicationsHealthy")["status"] == "False"
    proj = await watch_until(
        api, "projects", STORE, lambda o: counts(o).get("failing") == 1, namespace=OWNER_NS
    )
    assert counts(proj)["healthy"] == 1
    # The Project says what is wrong, not only how many.
    (failure,) = counts(proj)["failures"]
    assert failure.startswith(f"{STORE_DEV}/greedy: workflow running for "), failure

    async def warned() -> str:
        out = event_messages(cluster, OWNER_NS, STORE, "ApplicationUnhealthy")
        return out if "greedy" in out else ""

    message = await eventually(warned, deadline=30, what="an ApplicationUnhealthy Event")
    assert "stuck" in message
    assert event_messages(cluster, STORE_DEV, "greedy", "ApplicationUnhealthy"), (
        "no Event on the Application itself"
    )

    # Fixed by its user (a request that fits): healthy again, and said so.
    fixed = apply_as(cluster, token, STORE_DEV, webservice("greedy", "nginx:1.27", cpu="0.1"))
    assert fixed.returncode == 0, fixed.stderr
    proj = await watch_until(
        api,
        "projects",
        STORE,
        lambda o: counts(o).get("failing") == 0 and counts(o).get("healthy") == 2,
        namespace=OWNER_NS,
        deadline=120,
    )
    assert "failures" not in counts(proj)

    async def recovered() -> str:
        out = event_messages(cluster, OWNER_NS, STORE, "ApplicationRecovered")
        return out if "greedy" in out else ""

    await eventually(recovered, deadline=30, what="an ApplicationRecovered Event")


@pytest.mark.usefixtures("vela_core")
def test_app_user_token_cannot_deploy_in_another_project(cluster: Cluster) -> None:
    token = deployer_token(cluster, STORE)
    denied = apply_as(cluster, token, f"{TENANT}-web", webservice("intruder", "nginx"))
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower(), denied.stderr


@pytest.mark.usefixtures("vela_core")
async def test_default_workflow_promotes_after_approval(
    cluster: Cluster, api: client.ApiClient
) -> None:
    """The project's `kubenova-promote` Workflow, run by vela-core: dev first, then it
    waits for an approval before prod."""
    token = deployer_token(cluster, STORE)
    body = json.loads(webservice("promoted", "nginx:1.27"))
    body["spec"]["workflow"] = {"ref": "kubenova-promote"}
    created = apply_as(cluster, token, STORE_DEV, json.dumps(body))
    assert created.returncode == 0, created.stderr

    def suspended(sync: dict[str, Any]) -> bool:
        s = summary(sync, "promoted")
        return bool(s and s.get("phase") == "workflowSuspending")

    await watch_until(api, "velasyncs", STORE, suspended, namespace=OWNER_NS, deadline=120)
    dev = cluster.kubectl("get", "deployment", "promoted", "-n", STORE_DEV, check=False)
    assert dev.returncode == 0, dev.stderr
    prod = cluster.kubectl("get", "deployment", "promoted", "-n", STORE_PROD, check=False)
    assert prod.returncode != 0, "deployed to prod before the approval"


@pytest.mark.usefixtures("vela_core")
def test_plugin_shows_apps_from_tenant_seats(cluster: Cluster, tmp_path: Path) -> None:
    """`kubectl kubenova apps` / `tenant` with real Applications (the lifecycle test's
    shop, at its third revision), from the app user's and the owner's tokens."""
    dev = token_kubeconfig(cluster, deployer_token(cluster, STORE), STORE_DEV, tmp_path / "dev")
    listed = plugin(dev, "apps", "-o", "json")
    assert listed.exit_code == 0, listed.output
    apps = {(a["namespace"], a["name"]): a for a in json.loads(listed.output)}
    shop = apps[(STORE_DEV, "shop")]
    assert shop["phase"] == "running" and shop["healthy"], shop
    assert shop["revision"] == "shop-v3" and shop["podSelector"] == "app.oam.dev/name=shop"
    assert shop["since"]
    table = plugin(dev, "apps")
    assert "shop-v3" in table.output and "running" in table.output, table.output
    # Another project's namespace: the app user may not list there, and is told what.
    other = plugin(dev, "apps", "-n", f"{TENANT}-web")
    assert other.exit_code == 1
    assert (
        f"missing permission to list applications.core.oam.dev in namespace {TENANT}-web"
        in other.output
    ), other.output

    owner_token = cluster.create_token("kubenova-owner", OWNER_NS)
    owner = token_kubeconfig(cluster, owner_token, OWNER_NS, tmp_path / "owner")
    store = plugin(owner, "apps", "-p", STORE, "-o", "json")
    assert store.exit_code == 0, store.output
    in_store = {(a["namespace"], a["name"]) for a in json.loads(store.output)}
    assert (STORE_DEV, "shop") in in_store
    assert {ns for ns, _ in in_store} <= {STORE_DEV, STORE_PROD}
    everything = plugin(owner, "apps", "-o", "json")
    assert (f"{TENANT}-web", "shop") in {
        (a["namespace"], a["name"]) for a in json.loads(everything.output)
    }
    tree = plugin(owner, "tenant", TENANT)
    assert tree.exit_code == 0, tree.output
    assert f"env dev namespace {STORE_DEV}" in tree.output
    assert "app shop  running  rev shop-v3  healthy" in tree.output, tree.output

    # logs: the app's pods, found by the selector VelaSync publishes; kwok's kubelet
    # API serves every container the same two lines (e2e/kubenova_e2e/kubevela.py).
    pods = cluster.kubectl(
        "get", "pods", "-n", STORE_DEV, "-l", shop["podSelector"], "-o", "name"
    ).stdout.split()
    assert pods
    logs = plugin(owner, "logs", "shop", "-n", STORE_DEV, "--no-follow")
    assert logs.exit_code == 0, logs.output
    for pod in pods:
        assert f"[{pod.removeprefix('pod/')}] serving" in logs.output, logs.output
    # The app user may read its pods' logs too (kubenova:app-user has pods/log).
    assert plugin(dev, "logs", "shop", "--no-follow", "--tail", "1").exit_code == 0
