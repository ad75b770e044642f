"""Tenants and Projects on the real API server: build, update, budgets, bad input,
drift healing, deletion. Each test uses its own tenant so tests stay independent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    api_message,
    condition,
    eventually,
    merge_patch,
    metric_value,
    must_condition,
    ready_at_generation,
    watch_until,
)

BUDGET = {
    "hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "40"},
    "maxProjects": 3,
    "maxNamespaces": 8,
}


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("budget", BUDGET)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    }


def project(tenant_name: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Project",
        "metadata": {"name": name, "namespace": f"{tenant_name}-owner"},
        "spec": spec,
    }


async def make_tenant(api: client.ApiClient, name: str, **spec: Any) -> dict[str, Any]:
    await client.CustomObjectsApi(api).create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant(name, **spec)
    )
    return await watch_until(api, "tenants", name, ready_at_generation)


async def make_project(
    api: client.ApiClient, tenant_name: str, name: str, wait: bool = True, **spec: Any
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    body = project(tenant_name, name, **spec)
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, f"{tenant_name}-owner", "projects", body
    )
    if not wait:
        return body
    return await watch_until(
        api, "projects", name, ready_at_generation, namespace=f"{tenant_name}-owner"
    )


async def credentials_issued(api: client.ApiClient, tenant: str) -> None:
    """Wait until the tenant's default kubeconfigs are issued: until then their
    identities are still being added to the tenant's RoleBindings (a change, not drift),
    and a test that edits those bindings would race with it."""
    for name in ("default-owner", "default-readonly"):
        await watch_until(
            api, "kubeconfigrequests", name, ready_at_generation, namespace=f"{tenant}-owner"
        )


async def quota_hard(api: client.ApiClient, namespace: str) -> dict[str, str]:
    quota = await client.CoreV1Api(api).read_namespaced_resource_quota("kubenova-quota", namespace)
    return dict(quota.spec.hard)


async def events_for(api: client.ApiClient, namespace: str, name: str) -> list[Any]:
    found = await client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return list(found.items)


async def test_tenant_with_projects_builds_everything(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    await make_tenant(
        api,
        "tp1",
        owners=[{"kind": "User", "name": "olga"}],
        viewers=[{"kind": "User", "name": "vic"}],
    )
    shop = await make_project(
        api,
        "tp1",
        "shop",
        environments=[{"name": "dev"}, {"name": "prod", "hard": {"requests.cpu": "2"}}],
        budget={"hard": {"requests.cpu": "500m", "pods": "5"}},
        developers=[{"kind": "User", "name": "dev-dan"}],
    )
    assert shop["status"]["namespaces"] == ["tp1-shop-dev", "tp1-shop-prod"]
    # What the project's budget leaves out of the tenant's, it gets none of.
    assert shop["status"]["claimed"] == {
        "pods": "5",
        "requests.cpu": "2500m",
        "requests.memory": "0",
    }
    assert await quota_hard(api, "tp1-shop-dev") == {
        "pods": "5",
        "requests.cpu": "500m",
        "requests.memory": "0",
    }
    assert await quota_hard(api, "tp1-shop-prod") == {
        "pods": "0",
        "requests.cpu": "2",
        "requests.memory": "0",
    }

    # The apps namespace gets what is left of the tenant budget.
    async def apps_left() -> bool:
        return await quota_hard(api, "tp1-apps") == {
            "pods": "35",
            "requests.cpu": "1500m",
            "requests.memory": "8Gi",
        }

    await eventually(apps_left, what="tp1-apps quota to shrink by the project's claim")

    for ns in ("tp1-owner", "tp1-apps", "tp1-shop-dev", "tp1-shop-prod"):
        names = {b.metadata.name for b in (await rbac.list_namespaced_role_binding(ns)).items}
        assert {"kubenova:tenant-owner", "kubenova:readonly"} <= names, ns
        assert (await core.read_namespaced_limit_range("kubenova-limits", ns)).spec.limits
        labels = (await core.read_namespace(ns)).metadata.labels
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    app_user = await rbac.read_namespaced_role_binding("kubenova:app-user", "tp1-shop-dev")
    assert {s.name for s in app_user.subjects} == {"dev-dan", "shop-deployer"}
    await core.read_namespaced_service_account("shop-deployer", "tp1-owner")

    # Update: add an environment and a developer.
    await merge_patch(
        api,
        "projects",
        "shop",
        namespace="tp1-owner",
        patch={
            "spec": {
                "environments": [
                    {"name": "dev"},
                    {"name": "prod", "hard": {"requests.cpu": "2"}},
                    {"name": "qa"},
                ],
                "developers": [
                    {"kind": "User", "name": "dev-dan"},
                    {"kind": "User", "name": "dev-eve"},
                ],
            }
        },
    )
    shop = await watch_until(api, "projects", "shop", ready_at_generation, namespace="tp1-owner")
    assert shop["status"]["namespaces"] == ["tp1-shop-dev", "tp1-shop-prod", "tp1-shop-qa"]
    app_user = await rbac.read_namespaced_role_binding("kubenova:app-user", "tp1-shop-qa")
    assert {s.name for s in app_user.subjects} == {"dev-dan", "dev-eve", "shop-deployer"}

    # Tenant status sums it up.
    obj = await watch_until(
        api,
        "tenants",
        "tp1",
        lambda o: (
            o.get("status", {}).get("projectCount") == 1 and o["status"].get("namespaceCount") == 5
        ),
    )
    assert obj["status"]["allocated"]["requests.cpu"] == "3"


async def test_budget_overflow_is_refused_and_nothing_else_changes(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    await make_tenant(api, "tp2")
    await make_project(api, "tp2", "big", budget={"hard": {"requests.cpu": "3"}})
    await make_project(api, "tp2", "huge", wait=False, budget={"hard": {"requests.cpu": "2"}})
    huge = await watch_until(
        api,
        "projects",
        "huge",
        lambda o: (condition(o, "Ready") or {}).get("reason") == "BudgetExceeded",
        namespace="tp2-owner",
    )
    message = must_condition(huge, "Ready")["message"]
    assert "requests.cpu: asks 2, other projects hold 3, tenant budget is 4 (1 left)" in message
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as missing:
        await core.read_namespace("tp2-huge")
    assert missing.value.status == 404

    async def warned() -> bool:
        return any(e.reason == "BudgetExceeded" for e in await events_for(api, "tp2-owner", "huge"))

    await eventually(warned, what="a BudgetExceeded Event on the project")

    # Lowering the tenant budget below what projects hold: reported, nothing deleted.
    await merge_patch(api, "tenants", "tp2", {"spec": {"budget": {"hard": {"requests.cpu": "1"}}}})
    obj = await watch_until(
        api,
        "tenants",
        "tp2",
        lambda o: (condition(o, "BudgetExceeded") or {}).get("status") == "True",
    )
    assert (
        "requests.cpu: projects hold 3, budget is 1"
        in must_condition(obj, "BudgetExceeded")["message"]
    )
    assert await quota_hard(api, "tp2-big") == {
        "pods": "0",
        "requests.cpu": "3",
        "requests.memory": "0",
    }
    big = await custom.get_namespaced_custom_object(GROUP, VERSION, "tp2-owner", "projects", "big")
    assert must_condition(big, "Ready")["status"] == "True"


async def test_project_outside_a_tenant_is_reported(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    cluster.kubectl("create", "namespace", "loose")
    await client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        "loose",
        "projects",
        project("x", "stray") | {"metadata": {"name": "stray", "namespace": "loose"}},
    )
    obj = await watch_until(
        api, "projects", "stray", lambda o: condition(o, "Ready") is not None, namespace="loose"
    )
    assert must_condition(obj, "Ready")["reason"] == "TenantNotFound"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"environments": [{"name": "Prod"}]}, "spec.environments[0].name"),
        ({"environments": [{"name": "a"}, {"name": "a"}]}, "Duplicate value"),
        ({"developers": [{"kind": "Robot", "name": "r"}]}, 'Unsupported value: "Robot"'),
        (
            {"budget": {"hard": {"requests.cpu": "lots"}}},
            'spec.budget.hard.requests.cpu: Invalid value: "lots"',
        ),
    ],
    ids=["env-not-dns", "env-duplicate", "subject-kind", "quantity"],
)
async def test_bad_project_is_refused(
    cluster: Cluster, api: client.ApiClient, spec: dict[str, Any], message: str
) -> None:
    cluster.kubectl("create", "namespace", "badproj-owner", check=False)
    with pytest.raises(ApiException) as refused:
        await client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, "badproj-owner", "projects", project("badproj", "p", **spec)
        )
    assert refused.value.status == 422
    assert message in api_message(refused.value), refused.value.body


async def _rv(api: client.ApiClient) -> dict[str, str]:
    """resourceVersions of everything Kubenova made for tenant tp3."""
    sel = "kubenova.io/tenant=tp3"
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    net = client.NetworkingV1Api(api)
    out = {}
    for kind, items in (
        ("ns", (await core.list_namespace(label_selector=sel)).items),
        ("rb", (await rbac.list_role_binding_for_all_namespaces(label_selector=sel)).items),
        ("rq", (await core.list_resource_quota_for_all_namespaces(label_selector=sel)).items),
        ("np", (await net.list_network_policy_for_all_namespaces(label_selector=sel)).items),
    ):
        for item in items:
            out[f"{kind}/{item.metadata.namespace}/{item.metadata.name}"] = (
                item.metadata.resource_version
            )
    return out


async def test_drift_is_healed_and_steady_state_writes_nothing(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    net = client.NetworkingV1Api(api)
    await make_tenant(api, "tp3")
    await credentials_issued(api, "tp3")

    # A deleted RoleBinding comes back.
    await rbac.delete_namespaced_role_binding("kubenova:tenant-owner", "tp3-apps")
    await eventually(
        lambda: rbac.read_namespaced_role_binding("kubenova:tenant-owner", "tp3-apps"),
        deadline=10,
        what="the RoleBinding to be restored",
    )
    # An edited quota is put back.
    await core.patch_namespaced_resource_quota(
        "kubenova-quota", "tp3-apps", {"spec": {"hard": {"requests.cpu": "100"}}}
    )

    async def quota_back() -> bool:
        return (await quota_hard(api, "tp3-apps"))["requests.cpu"] == "4"

    await eventually(quota_back, deadline=10, what="the quota to be restored")
    # A removed namespace label is restored.
    await core.patch_namespace(
        "tp3-apps", {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    )

    async def label_back() -> bool:
        labels = (await core.read_namespace("tp3-apps")).metadata.labels
        return bool(labels["pod-security.kubernetes.io/enforce"] == "baseline")

    await eventually(label_back, deadline=10, what="the Pod Security label to be restored")
    # A deleted NetworkPolicy comes back.
    await net.delete_namespaced_network_policy("kubenova-tenant-isolation", "tp3-apps")
    await eventually(
        lambda: net.read_namespaced_network_policy("kubenova-tenant-isolation", "tp3-apps"),
        deadline=10,
        what="the NetworkPolicy to be restored",
    )

    # A deleted LimitRange and a deleted ServiceAccount come back.
    await core.delete_namespaced_limit_range("kubenova-limits", "tp3-owner")
    await eventually(
        lambda: core.read_namespaced_limit_range("kubenova-limits", "tp3-owner"),
        deadline=10,
        what="the LimitRange to be restored",
    )
    await core.delete_namespaced_service_account("kubenova-readonly", "tp3-owner")
    await eventually(
        lambda: core.read_namespaced_service_account("kubenova-readonly", "tp3-owner"),
        deadline=10,
        what="the ServiceAccount to be restored",
    )

    async def healed_event() -> bool:
        found = await core.list_event_for_all_namespaces(
            field_selector="involvedObject.name=tp3,reason=DriftHealed"
        )
        return any("RoleBinding tp3-apps/kubenova:tenant-owner" in e.message for e in found.items)

    await eventually(healed_event, what="a DriftHealed Event naming the RoleBinding")
    obj = await client.CustomObjectsApi(api).get_cluster_custom_object(
        GROUP, VERSION, "tenants", "tp3"
    )
    assert must_condition(obj, "Drifted")["reason"] == "DriftHealed"
    metrics = operator.metrics()
    for kind in (
        "RoleBinding",
        "ResourceQuota",
        "Namespace",
        "NetworkPolicy",
        "LimitRange",
        "ServiceAccount",
    ):
        assert (
            metric_value(metrics, "kubenova_drift_corrections_total", kind=kind, action="healed")
            >= 1
        ), kind
    assert metric_value(metrics, "kubenova_objects", kind="Tenant", phase="Ready") >= 1

    # Steady state: two resync periods (5 s each in tests) pass and nothing is written.
    before = await _rv(api)
    resyncs = _resyncs(operator)
    await eventually(
        lambda: _async(_resyncs(operator) >= resyncs + 2), deadline=30, what="two resync passes"
    )
    assert await _rv(api) == before


def _resyncs(operator: OperatorProcess) -> float:
    return metric_value(
        operator.metrics(), "controller_runtime_reconcile_total", controller="tenant"
    )


async def _async(value: bool) -> bool:
    return value


async def test_report_policy_only_reports(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    await make_tenant(api, "tp4", driftPolicy="Report")
    await credentials_issued(api, "tp4")
    await rbac.delete_namespaced_role_binding("kubenova:readonly", "tp4-apps")
    obj = await watch_until(
        api, "tenants", "tp4", lambda o: (condition(o, "Drifted") or {}).get("status") == "True"
    )
    assert "RoleBinding tp4-apps/kubenova:readonly" in must_condition(obj, "Drifted")["message"]
    with pytest.raises(ApiException) as missing:
        await rbac.read_namespaced_role_binding("kubenova:readonly", "tp4-apps")
    assert missing.value.status == 404
    # Switching to Heal repairs it.
    await merge_patch(api, "tenants", "tp4", {"spec": {"driftPolicy": "Heal"}})
    await eventually(
        lambda: rbac.read_namespaced_role_binding("kubenova:readonly", "tp4-apps"),
        deadline=15,
        what="the RoleBinding to be restored under Heal",
    )


async def test_deletion_policies_and_blocking(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    await make_tenant(api, "tp5", deletionPolicy="Delete")
    await make_project(api, "tp5", "keep")  # Retain (default)
    await make_project(api, "tp5", "drop", deletionPolicy="Delete")

    # A tenant with projects is held, with a reason.
    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", "tp5")
    held = await watch_until(
        api,
        "tenants",
        "tp5",
        lambda o: (condition(o, "Ready") or {}).get("reason") == "DeletionBlocked",
    )
    assert "keep" in must_condition(held, "Ready")["message"]

    # A Project's deletionPolicy is its own: "keep" has none, so Retain, in a Delete
    # tenant. Both ways of propagating a delete: Background (what Flux's prune sends)
    # and Foreground (the API server's foregroundDeletion finalizer next to Kubenova's).
    await custom.delete_namespaced_custom_object(
        GROUP, VERSION, "tp5-owner", "projects", "keep", propagation_policy="Background"
    )
    await custom.delete_namespaced_custom_object(
        GROUP, VERSION, "tp5-owner", "projects", "drop", propagation_policy="Foreground"
    )

    async def ns_gone(name: str) -> bool:
        try:
            ns = await core.read_namespace(name)
        except ApiException as exc:
            return exc.status == 404
        return ns.metadata.deletion_timestamp is not None

    await eventually(lambda: ns_gone("tp5-drop"), deadline=30, what="tp5-drop deleted")
    kept = await core.read_namespace("tp5-keep")
    assert "kubenova.io/tenant" not in (kept.metadata.labels or {})
    assert kept.metadata.deletion_timestamp is None

    # With the projects gone the tenant finishes deleting, and Delete removes its own.
    await eventually(lambda: ns_gone("tp5-apps"), deadline=60, what="tp5-apps deleted")
    await eventually(lambda: ns_gone("tp5-owner"), deadline=60, what="tp5-owner deleted")


async def test_operator_restart_mid_build_converges(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    """Kill the operator while it builds a tenant with projects; a new one converges
    with exactly one of everything."""
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(GROUP, VERSION, "tenants", tenant("tp6"))
    await eventually(
        lambda: client.CoreV1Api(api).read_namespace("tp6-owner"),
        deadline=30,
        what="tp6-owner to exist",
    )
    for name in ("a", "b"):
        await custom.create_namespaced_custom_object(
            GROUP, VERSION, "tp6-owner", "projects", project("tp6", name)
        )
    operator.stop(kill=True)
    operator.start()
    for name in ("a", "b"):
        await watch_until(
            api, "projects", name, ready_at_generation, namespace="tp6-owner", deadline=90
        )
    await watch_until(
        api,
        "tenants",
        "tp6",
        lambda o: ready_at_generation(o) and o["status"].get("projectCount") == 2,
        deadline=60,
    )
    bindings = await client.RbacAuthorizationV1Api(api).list_role_binding_for_all_namespaces(
        label_selector="kubenova.io/tenant=tp6"
    )
    names = sorted(f"{b.metadata.namespace}/{b.metadata.name}" for b in bindings.items)
    # 2 per tenant namespace, 4 per project namespace (KubeVela's writer role included)
    assert len(names) == len(set(names)) == 2 * 2 + 2 * 4
    await asyncio.sleep(0)


async def test_capsule_and_kubevela_absent_are_reported_not_required(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    """Without Capsule or KubeVela the tenant is Ready with native guardrails, and the
    sync objects say why they have nothing to sync; a deleted one is rebuilt."""
    custom = client.CustomObjectsApi(api)
    await make_tenant(api, "tp7")
    await make_project(api, "tp7", "app")
    capsule = await watch_until(
        api, "capsulesyncs", "tp7", lambda o: condition(o, "Available") is not None
    )
    available = must_condition(capsule, "Available")
    assert (available["status"], available["reason"]) == ("False", "CapsuleNotInstalled")
    assert "capsule.clastix.io/v1beta2" in available["message"]
    assert capsule["metadata"]["ownerReferences"][0]["kind"] == "Tenant"
    vela = await watch_until(
        api,
        "velasyncs",
        "app",
        lambda o: condition(o, "Available") is not None,
        namespace="tp7-owner",
    )
    assert must_condition(vela, "Available")["reason"] == "KubeVelaNotInstalled"

    uid = capsule["metadata"]["uid"]
    await custom.delete_cluster_custom_object(GROUP, VERSION, "capsulesyncs", "tp7")
    rebuilt = await watch_until(
        api, "capsulesyncs", "tp7", lambda o: o["metadata"]["uid"] != uid, deadline=15
    )
    assert rebuilt["spec"]["tenantRef"]["name"] == "tp7"
