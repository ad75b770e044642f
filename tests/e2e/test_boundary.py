"""The tenant boundary, tried from the attacker's side against the real API server.

Budgets bound every namespace of a tenant (the owner's own credential is refused by
the API server's quota admission), Kubenova never takes over a namespace it did not
create for the tenant, Projects cannot name ServiceAccounts outside their tenant, and
one child the API server refuses stalls only the object that produced it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    condition,
    eventually,
    merge_patch,
    ready_at_generation,
    until_deleted,
    watch_until,
)
from .test_tenants_projects import make_project, make_tenant, project, quota_hard, tenant

pytestmark = pytest.mark.usefixtures("operator")


def reason_is(reason: str) -> Any:
    def check(obj: dict[str, Any]) -> bool:
        ready = condition(obj, "Ready") or {}
        return bool(
            ready.get("reason") == reason
            and ready.get("observedGeneration") == obj["metadata"]["generation"]
        )

    return check


def stalled_with(reason: str) -> Any:
    def check(obj: dict[str, Any]) -> bool:
        stalled = condition(obj, "Stalled") or {}
        return bool(reason_is(reason)(obj) and stalled.get("status") == "True")

    return check


def greedy_pod(name: str, **resources: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "registry.example/app:1",
                        "resources": {"requests": resources, "limits": resources},
                    }
                ]
            },
        }
    )


async def test_every_namespace_is_bounded_by_the_tenant_budget(
    cluster: Cluster, api: client.ApiClient
) -> None:
    """The owner's own credential asks for far more than the budget in the apps
    namespace, a project without a budget and a project with a partial one: the API
    server refuses each pod, and the quotas add up to no more than the budget."""
    budget = {"hard": {"requests.cpu": "2", "requests.memory": "2Gi", "limits.cpu": "4"}}
    await make_tenant(api, "bq", budget=budget)
    await make_project(api, "bq", "nobudget")
    await make_project(api, "bq", "partial", budget={"hard": {"cpu": "1"}})
    token = cluster.create_token("kubenova-owner", "bq-owner")
    for namespace in ("bq-apps", "bq-nobudget", "bq-partial"):
        out = cluster.token_kubectl(
            token,
            "create",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=greedy_pod("greedy", cpu="1000", memory="10Ti"),
        )
        assert out.returncode != 0, f"a pod over the budget was admitted in {namespace}"
        assert "exceeded quota" in out.stderr or "forbidden" in out.stderr.lower(), out.stderr
    totals: dict[str, float] = {}
    for namespace in ("bq-apps", "bq-nobudget", "bq-partial"):
        hard = await quota_hard(api, namespace)
        for key in budget["hard"]:
            assert key in hard, f"{namespace} is unbounded in {key}: {hard}"
        cpu = hard["requests.cpu"]
        totals["requests.cpu"] = totals.get("requests.cpu", 0) + (
            float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
        )
    assert totals["requests.cpu"] <= 2
    # "cpu" in a project budget is requests.cpu, as ResourceQuota reads it.
    assert (await quota_hard(api, "bq-partial"))["requests.cpu"] == "1"
    owner = await quota_hard(api, "bq-owner")
    assert owner["pods"] == "0" and owner["requests.cpu"] == "0"


async def test_a_hand_made_namespace_is_never_taken_over(
    cluster: Cluster, api: client.ApiClient
) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    await core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="victim-apps", labels={"team": "v"}))
    )
    await core.create_namespaced_secret(
        "victim-apps",
        client.V1Secret(metadata=client.V1ObjectMeta(name="crown-jewels"), string_data={"k": "v"}),
    )
    body = tenant(
        "victim",
        owners=[{"kind": "User", "name": "mallory"}],
        deletionPolicy="Delete",
    )
    await custom.create_cluster_custom_object(GROUP, VERSION, "tenants", body)
    stalled = await watch_until(api, "tenants", "victim", stalled_with("NamespaceConflict"))
    assert "'victim-apps'" in (condition(stalled, "Ready") or {})["message"]
    assert "not created by Kubenova" in (condition(stalled, "Ready") or {})["message"]
    ns = await core.read_namespace("victim-apps")
    assert ns.metadata.labels == {"team": "v", "kubernetes.io/metadata.name": "victim-apps"}
    bindings = await client.RbacAuthorizationV1Api(api).list_namespaced_role_binding("victim-apps")
    assert not bindings.items
    out = cluster.kubectl(
        "auth", "can-i", "get", "secrets", "-n", "victim-apps", "--as=mallory", check=False
    )
    assert out.stdout.strip() == "no"
    # Deleting the Tenant (policy Delete) deletes nothing it did not create.
    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", "victim")

    await until_deleted(api, "tenants", "victim", deadline=30)
    still = await core.read_namespace("victim-apps")
    assert still.metadata.deletion_timestamp is None
    assert (await core.read_namespaced_secret("crown-jewels", "victim-apps")).data


async def test_tenant_and_project_namespaces_never_collide(
    cluster: Cluster, api: client.ApiClient
) -> None:
    """Tenant sq's project yp with environments owner and apps has the namespaces a
    Tenant sq-yp would need: the later comer is refused, naming the owner."""
    custom = client.CustomObjectsApi(api)
    await make_tenant(api, "sq")
    await make_project(api, "sq", "yp", environments=[{"name": "owner"}, {"name": "apps"}])
    body = tenant("sq-yp", owners=[{"kind": "User", "name": "mallory"}])
    await custom.create_cluster_custom_object(GROUP, VERSION, "tenants", body)
    stalled = await watch_until(api, "tenants", "sq-yp", stalled_with("NamespaceConflict"))
    assert "tenant 'sq', project 'yp'" in (condition(stalled, "Ready") or {})["message"]
    out = cluster.kubectl(
        "auth", "can-i", "list", "secrets", "-n", "sq-yp-owner", "--as=mallory", check=False
    )
    assert out.stdout.strip() == "no"
    # And the other way round: a project whose namespace is another tenant's.
    await make_tenant(api, "ab-cd")
    await make_tenant(api, "ab")
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "ab-owner", "projects", project("ab", "cd", environments=[{"name": "apps"}])
    )
    refused = await watch_until(
        api, "projects", "cd", stalled_with("NamespaceConflict"), namespace="ab-owner"
    )
    assert "tenant 'ab-cd'" in (condition(refused, "Ready") or {})["message"]


async def test_a_retained_tenant_is_taken_back_when_created_again(
    cluster: Cluster, api: client.ApiClient
) -> None:
    """The one re-adoption: deletionPolicy Retain leaves the namespaces, and a Tenant
    of the same name created again takes them back; its old workloads stay."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    first = await make_tenant(api, "phoenix")
    await core.create_namespaced_config_map(
        "phoenix-apps",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="left-behind"), data={"k": "v"}),
    )
    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", "phoenix")

    async def released() -> bool:
        ns = await core.read_namespace("phoenix-apps")
        return "kubenova.io/tenant" not in (ns.metadata.labels or {})

    await eventually(released, deadline=30, what="phoenix-apps released")
    ns = await core.read_namespace("phoenix-apps")
    assert ns.metadata.annotations["kubenova.io/released-from"] == "phoenix"

    # The teardown releases the namespaces, then the finalizer: until that last write
    # the API server refuses a Tenant of the same name (409, being deleted).
    await until_deleted(api, "tenants", "phoenix", deadline=30)
    again = await make_tenant(api, "phoenix")
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    ns = await core.read_namespace("phoenix-apps")
    assert ns.metadata.annotations["kubenova.io/tenant-uid"] == again["metadata"]["uid"]
    assert (await core.read_namespaced_config_map("left-behind", "phoenix-apps")).data


async def test_project_subjects_stay_inside_the_tenant(api: client.ApiClient) -> None:
    await make_tenant(api, "sub")
    await make_tenant(api, "other")
    custom = client.CustomObjectsApi(api)
    body = project(
        "sub",
        "bridge",
        developers=[
            {"kind": "ServiceAccount", "name": "kubenova-owner", "namespace": "other-owner"}
        ],
    )
    await custom.create_namespaced_custom_object(GROUP, VERSION, "sub-owner", "projects", body)
    refused = await watch_until(
        api, "projects", "bridge", stalled_with("SubjectNotAllowed"), namespace="sub-owner"
    )
    assert "other-owner/kubenova-owner" in (condition(refused, "Ready") or {})["message"]
    # Its own namespaces' ServiceAccounts are fine.
    await make_project(
        api,
        "sub",
        "ci",
        developers=[{"kind": "ServiceAccount", "name": "builder", "namespace": "sub-apps"}],
    )


BLOCKING_POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: e2e-no-blocked-namespaces}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [namespaces]}
  validations:
    - expression: "!object.metadata.name.endsWith('-blocked')"
      message: "namespaces ending in -blocked are not allowed on this cluster"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: e2e-no-blocked-namespaces}
spec:
  policyName: e2e-no-blocked-namespaces
  validationActions: [Deny]
"""


async def test_one_refused_child_never_wedges_its_tenant(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    """A cluster policy refuses one project's namespace: that Project is Stalled with
    the API server's message, its tenant and sibling keep reconciling, and nothing is
    retried in a loop."""
    cluster.apply(BLOCKING_POLICY)

    async def policy_active() -> bool:
        out = cluster.kubectl(
            "create", "namespace", "probe-blocked", "--dry-run=server", check=False
        )
        return out.returncode != 0 and "-blocked are not allowed" in out.stderr

    await eventually(policy_active, deadline=30, what="the blocking policy to be enforced")
    try:
        await make_tenant(api, "wedge")
        await make_project(api, "wedge", "fine")
        custom = client.CustomObjectsApi(api)
        await custom.create_namespaced_custom_object(
            GROUP, VERSION, "wedge-owner", "projects", project("wedge", "blocked")
        )
        refused = await watch_until(
            api, "projects", "blocked", stalled_with("ApplyFailed"), namespace="wedge-owner"
        )
        assert "-blocked are not allowed" in (condition(refused, "Ready") or {})["message"]
        # The sibling's edits still go through, and the tenant stays Ready.
        await merge_patch(
            api,
            "projects",
            "fine",
            {"spec": {"budget": {"hard": {"requests.cpu": "1"}}}},
            namespace="wedge-owner",
        )
        await watch_until(api, "projects", "fine", ready_at_generation, namespace="wedge-owner")
        assert (await quota_hard(api, "wedge-fine"))["requests.cpu"] == "1"
        await watch_until(api, "tenants", "wedge", ready_at_generation)
        # Stalled means no retry loop: its resourceVersion holds while nothing changes.
        before = refused["metadata"]["resourceVersion"]
        latest = await custom.get_namespaced_custom_object(
            GROUP, VERSION, "wedge-owner", "projects", "blocked"
        )
        assert latest["metadata"]["resourceVersion"] == before
        assert "Traceback" not in operator.tail(400)
    finally:
        cluster.kubectl(
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            "e2e-no-blocked-namespaces",
            check=False,
        )


async def test_a_deleting_tenant_builds_no_new_project(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    await make_tenant(api, "dying")
    await make_project(api, "dying", "holds")
    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", "dying")
    await watch_until(
        api,
        "tenants",
        "dying",
        lambda o: (condition(o, "Ready") or {}).get("reason") == "DeletionBlocked",
    )
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "dying-owner", "projects", project("dying", "late")
    )
    late = await watch_until(
        api, "projects", "late", stalled_with("TenantDeleting"), namespace="dying-owner"
    )
    assert not (late.get("status") or {}).get("namespaces")
    for name in ("holds", "late"):
        await custom.delete_namespaced_custom_object(
            GROUP, VERSION, "dying-owner", "projects", name
        )

    await until_deleted(api, "tenants", "dying", deadline=60)
