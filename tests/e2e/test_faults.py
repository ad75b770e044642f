"""Faults: what happens while the operator is away, and when the control plane under
it restarts.

Kubenova puts a finalizer only where a deletion needs its cleanup (Tenants and
Projects: kubenova.io/teardown). Everything else it makes is deleted by the garbage
collector through ownerReferences, so deleting it completes with the operator stopped;
when the operator returns it rebuilds what its tenants still want.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubenova_operator.credentials.tokens import binding_secret_name

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    condition,
    eventually,
    merge_patch,
    project_body,
    ready_at_generation,
    tenant_body,
    until_deleted,
    watch_until,
)

pytestmark = pytest.mark.e2e

BUDGET = {"hard": {"requests.cpu": "2", "requests.memory": "4Gi", "pods": "20"}}
KOPF_FINALIZER = "kubenova.io/finalizer"
KOPF_DIFFBASE = "kubenova.io/last-handled-configuration"


def kcr(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KubeConfigRequest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


async def _get(
    api: client.ApiClient, plural: str, name: str, namespace: str | None = None
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    if namespace:
        return dict(
            await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        )
    return dict(await custom.get_cluster_custom_object(GROUP, VERSION, plural, name))


async def _namespace_gone(api: client.ApiClient, name: str) -> bool:
    try:
        await client.CoreV1Api(api).read_namespace(name)
    except ApiException as exc:
        return exc.status == 404
    return False


async def _healthy(operator: OperatorProcess) -> bool:
    assert operator.alive(), f"operator exited:\n{operator.tail()}"
    return operator.healthy()


async def _build_fz1(api: client.ApiClient) -> None:
    """A tenant with a project and a request of its own, all Ready."""
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant_body("fz1", budget=BUDGET)
    )
    await watch_until(api, "tenants", "fz1", ready_at_generation)
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "fz1-owner", "projects", project_body("fz1", "web")
    )
    await watch_until(api, "projects", "web", ready_at_generation, namespace="fz1-owner")
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "fz1-owner", "kubeconfigrequests", kcr("mine", "fz1-owner", role="readonly")
    )
    mine = await watch_until(
        api, "kubeconfigrequests", "mine", ready_at_generation, namespace="fz1-owner"
    )
    capsule = await watch_until(
        api, "capsulesyncs", "fz1", lambda o: condition(o, "Ready") is not None
    )
    vela = await watch_until(
        api, "velasyncs", "web", lambda o: condition(o, "Ready") is not None, namespace="fz1-owner"
    )
    # Only Tenants and Projects carry a finalizer (Kubenova's own teardown).
    for obj in (mine, capsule, vela):
        assert not obj["metadata"].get("finalizers"), obj["metadata"]
        assert not any(
            k.startswith("kubenova.io/") for k in obj["metadata"].get("annotations") or {}
        )
    tenant = await _get(api, "tenants", "fz1")
    assert tenant["metadata"]["finalizers"] == ["kubenova.io/teardown"]
    await client.CoreV1Api(api).read_namespaced_secret(binding_secret_name("mine"), "fz1-owner")


async def test_deletions_complete_while_the_operator_is_stopped(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    await _build_fz1(api)
    binding = binding_secret_name("mine")

    operator.stop()
    try:
        # What an earlier release left: kopf's finalizer and last-handled annotation.
        for name in ("default-owner", "default-readonly"):
            await merge_patch(
                api,
                "kubeconfigrequests",
                name,
                {
                    "metadata": {
                        "finalizers": [KOPF_FINALIZER],
                        "annotations": {KOPF_DIFFBASE: "{}"},
                    }
                },
                namespace="fz1-owner",
            )
        await custom.delete_namespaced_custom_object(
            GROUP, VERSION, "fz1-owner", "kubeconfigrequests", "mine"
        )
        await custom.delete_cluster_custom_object(GROUP, VERSION, "capsulesyncs", "fz1")
        await custom.delete_namespaced_custom_object(
            GROUP, VERSION, "fz1-owner", "velasyncs", "web"
        )
        await client.CoreV1Api(api).delete_namespace("fz1-web")
        await until_deleted(api, "kubeconfigrequests", "mine", namespace="fz1-owner")
        await until_deleted(api, "capsulesyncs", "fz1")
        await until_deleted(api, "velasyncs", "web", namespace="fz1-owner")
        await eventually(lambda: _namespace_gone(api, "fz1-web"), deadline=60, what="fz1-web")

        # What a request made goes with it (ownerReferences), operator or not.
        async def binding_gone() -> bool:
            try:
                await client.CoreV1Api(api).read_namespaced_secret(binding, "fz1-owner")
            except ApiException as exc:
                return exc.status == 404
            return False

        await eventually(binding_gone, deadline=30, what=f"{binding} garbage-collected")
        # An old kopf finalizer holds a deletion until the new operator removes it.
        await custom.delete_namespaced_custom_object(
            GROUP, VERSION, "fz1-owner", "kubeconfigrequests", "default-readonly"
        )
        held = await _get(api, "kubeconfigrequests", "default-readonly", "fz1-owner")
        assert held["metadata"].get("deletionTimestamp")
        old_uid = held["metadata"]["uid"]
    finally:
        operator.start()
        await eventually(lambda: _healthy(operator), deadline=60, what="operator /healthz")

    # The deletion held by kopf's old finalizer completes, and the tenant's pass
    # rebuilds its default request; the other one loses kopf's leftovers.
    await watch_until(
        api,
        "kubeconfigrequests",
        "default-readonly",
        lambda o: o["metadata"]["uid"] != old_uid and ready_at_generation(o),
        namespace="fz1-owner",
        deadline=60,
    )

    async def leftovers_gone() -> bool:
        meta = (await _get(api, "kubeconfigrequests", "default-owner", "fz1-owner"))["metadata"]
        return KOPF_FINALIZER not in (meta.get("finalizers") or []) and KOPF_DIFFBASE not in (
            meta.get("annotations") or {}
        )

    await eventually(leftovers_gone, deadline=30, what="kopf's leftovers removed")
    # What the tenant still wants comes back; what a user deleted stays deleted.
    await watch_until(api, "capsulesyncs", "fz1", lambda o: condition(o, "Ready") is not None)
    await watch_until(
        api,
        "velasyncs",
        "web",
        lambda o: condition(o, "Ready") is not None,
        namespace="fz1-owner",
    )
    await eventually(
        lambda: client.CoreV1Api(api).read_namespace("fz1-web"), deadline=60, what="fz1-web back"
    )
    await watch_until(api, "projects", "web", ready_at_generation, namespace="fz1-owner")
    await watch_until(api, "tenants", "fz1", ready_at_generation)
    with pytest.raises(ApiException) as gone:
        await _get(api, "kubeconfigrequests", "mine", "fz1-owner")
    assert gone.value.status == 404
