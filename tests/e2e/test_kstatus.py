"""What Flux (kstatus, sigs.k8s.io/cli-utils) sees of Kubenova's objects, computed by
the real kstatus library (the `kstatus` peer, e2e/kstatus) on objects read live from
the API server.

The contract (issue #14): Ready=True at the object's generation is Current; while a
Tenant is being built it is InProgress (Reconciling=True); an error the operator cannot
get past by retrying (the spec has to change) is Failed: Ready=False and Stalled=True
with the same reason, written once, then nothing until the spec changes; fixing the
spec brings it back to Current.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

import pytest
from kubenova_e2e.build import kstatus_binary
from kubenova_e2e.kstatus import KStatus, compute
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client, watch

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    condition,
    eventually,
    merge_patch,
    must_condition,
    ready_at_generation,
    until_deleted,
    watch_until,
)
from .harness import project_body as project
from .harness import tenant_body as tenant

# --- the wrapper on handcrafted objects -----------------------------------------------


def obj(
    generation: int = 2,
    observed: int | None = 2,
    *conditions: tuple[str, str, str],
    **metadata: Any,
) -> dict[str, Any]:
    """A kubenova.io object at `generation` whose status has observed `observed`, with
    (type, status, reason) conditions."""
    status: dict[str, Any] = {
        "conditions": [
            {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": f"{type_} is {status} because {reason}",
                "observedGeneration": observed,
            }
            for type_, status, reason in conditions
        ]
    }
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Project",
        "metadata": {"name": "p", "namespace": "t-owner", "generation": generation, **metadata},
        "status": status,
    }


READY = ("Ready", "True", "Reconciled")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (obj(2, 2, READY), "Current", "Resource is Ready"),
        (
            obj(2, 2, ("Ready", "False", "BudgetExceeded"), ("Stalled", "True", "BudgetExceeded")),
            "Failed",
            "Stalled is True because BudgetExceeded",
        ),
        (
            obj(2, 2, ("Ready", "False", "Building"), ("Reconciling", "True", "Building")),
            "InProgress",
            "Reconciling is True because Building",
        ),
        (obj(3, 2, READY), "InProgress", "Project generation is 3, but latest observed"),
        (
            obj(2, 2, READY, deletionTimestamp="2025-01-01T00:00:00Z"),
            "Terminating",
            "Resource scheduled for deletion",
        ),
        # What an operator without Stalled gives for a terminal error: kstatus cannot
        # tell it from a transient one, so Flux waits for it until its timeout.
        (obj(2, 2, ("Ready", "False", "BudgetExceeded")), "InProgress", "Ready is False"),
        # No status at all (before the operator's first write): kstatus cannot know
        # that anything is pending.
        (
            {k: v for k, v in obj(1, None).items() if k != "status"},
            "Current",
            "Resource is current",
        ),
    ],
    ids=[
        "ready",
        "stalled",
        "reconciling",
        "generation-behind",
        "deleting",
        "ready-false-only",
        "no-status",
    ],
)
def test_wrapper_gives_kstatus_verdicts(body: dict[str, Any], status: str, message: str) -> None:
    [verdict] = compute([body])
    assert (verdict.status, verdict.name) == (status, "p"), verdict
    assert message in verdict.message, verdict


def test_wrapper_keeps_order_and_reads_one_object_per_line() -> None:
    bodies = [obj(2, 2, READY), obj(3, 2, READY), obj(2, 2, ("Stalled", "True", "X"))]
    for i, body in enumerate(bodies):
        body["metadata"]["name"] = f"o{i}"
    assert [(v.name, v.status) for v in compute(bodies)] == [
        ("o0", "Current"),
        ("o1", "InProgress"),
        ("o2", "Failed"),
    ]
    assert compute([]) == []
    # The binary itself also reads objects one per line (as `kubectl get -o json` of
    # several objects, piped through jq -c '.items[]', gives them).
    lines = subprocess.run(
        [str(kstatus_binary())],
        input="\n".join(json.dumps(b) for b in bodies),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["Current", "InProgress", "Failed"]


# --- Kubenova's objects, live ---------------------------------------------------------


async def kstatus_of(body: dict[str, Any]) -> KStatus:
    [verdict] = await asyncio.to_thread(compute, [body])
    return verdict


async def read(
    api: client.ApiClient, plural: str, name: str, namespace: str | None = None
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    if namespace:
        found = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    else:
        found = await custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
    return dict(found)


async def until_kstatus(
    api: client.ApiClient,
    plural: str,
    name: str,
    want: str,
    *,
    namespace: str | None = None,
    deadline: float = 60.0,
) -> dict[str, Any]:
    """Watch one object until kstatus says `want` of a version the operator has written
    the status of at its generation (a new object, with no status yet, is Current to
    kstatus); fail with kstatus' last verdicts."""
    seen: list[KStatus] = []

    def judged(body: dict[str, Any]) -> bool:
        [verdict] = compute([body])
        if not seen or seen[-1] != verdict:
            seen.append(verdict)
        observed = (body.get("status") or {}).get("observedGeneration")
        return verdict.status == want and observed == body["metadata"].get("generation")

    try:
        return await watch_until(api, plural, name, judged, namespace=namespace, deadline=deadline)
    except AssertionError as exc:
        history = " -> ".join(str(v) for v in seen[-5:])
        raise AssertionError(
            f"{plural}/{name}: kstatus never said {want} within {deadline}s; "
            f"its verdicts: {history}\n{exc}"
        ) from None


def stalled_like_ready(body: dict[str, Any], reason: str) -> None:
    """The contract's shape of a terminal error: Ready=False and Stalled=True with the
    same reason, at the object's generation."""
    generation = body["metadata"]["generation"]
    ready, stalled = must_condition(body, "Ready"), must_condition(body, "Stalled")
    assert (ready["status"], ready["reason"]) == ("False", reason), ready
    assert (stalled["status"], stalled["reason"]) == ("True", reason), stalled
    assert body["status"].get("observedGeneration") == generation, body["status"]
    for cond in (ready, stalled):
        assert cond.get("observedGeneration", generation) == generation, cond
    assert condition(body, "Reconciling") is None or (
        must_condition(body, "Reconciling")["status"] != "True"
    )


async def test_ready_tenant_and_project_are_current(
    operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant("ks1", budget={"hard": {"requests.cpu": "2"}})
    )
    await watch_until(api, "tenants", "ks1", ready_at_generation)
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "ks1-owner", "projects", project("ks1", "web")
    )
    web = await watch_until(api, "projects", "web", ready_at_generation, namespace="ks1-owner")
    ks1 = await watch_until(api, "tenants", "ks1", ready_at_generation)
    tenant_verdict, project_verdict = await asyncio.to_thread(compute, [ks1, web])
    assert tenant_verdict.status == "Current", tenant_verdict
    assert project_verdict.status == "Current", project_verdict


def conditions_of(body: dict[str, Any]) -> str:
    """`rv <resourceVersion>: Type=Status(Reason), ...`, for a failure message."""
    conditions = (body.get("status") or {}).get("conditions") or []
    listed = ", ".join(f"{c['type']}={c['status']}({c.get('reason')})" for c in conditions)
    return f"rv {body['metadata']['resourceVersion']}: {listed or 'no conditions'}"


async def test_tenant_is_in_progress_while_building(
    operator: OperatorProcess, api: client.ApiClient
) -> None:
    """Every version of a new Tenant, from its creation until kstatus says Current: none
    is Failed; each one the operator wrote before the tenant was Ready is InProgress,
    with Reconciling=True; the last is Ready at its generation. (The version the API
    server stores on create has no status yet, and kstatus reads that as Current
    whatever the operator does: recorded in the history, not asserted.)"""
    custom = client.CustomObjectsApi(api)
    created = await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant("ks2", budget={"hard": {"requests.cpu": "2"}})
    )
    versions: list[tuple[dict[str, Any], KStatus]] = [(created, await kstatus_of(created))]
    stream = watch.Watch()
    async with stream.stream(
        custom.list_cluster_custom_object,
        GROUP,
        VERSION,
        "tenants",
        field_selector="metadata.name=ks2",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=60,
    ) as events:
        async for event in events:
            body = dict(event["object"])
            versions.append((body, await kstatus_of(body)))
            if body.get("status") and versions[-1][1].status == "Current":
                break
    history = [f"{conditions_of(body)} -> {verdict}" for body, verdict in versions]
    print("\n".join(["versions of tenant ks2 and their kstatus:", *history]))
    assert all(verdict.status != "Failed" for _, verdict in versions), history
    last, verdict = versions[-1]
    assert last.get("status") and verdict.status == "Current", history
    assert ready_at_generation(last), history
    for body, verdict in versions[1:-1]:
        if body.get("status") and not ready_at_generation(body):
            assert verdict.status == "InProgress", history
            assert (condition(body, "Reconciling") or {}).get("status") == "True", history


async def test_kubectl_wait_for_ready_on_a_tenant(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.apply(tenant("ks3", budget={"hard": {"requests.cpu": "1"}}))
    waited = cluster.kubectl(
        "wait", "--for=condition=Ready", "--timeout=90s", "tenant.kubenova.io/ks3", check=False
    )
    assert waited.returncode == 0, waited.stderr
    assert "tenant.kubenova.io/ks3 condition met" in waited.stdout


async def test_project_over_budget_fails_then_recovers(
    operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant("ks4", budget={"hard": {"requests.cpu": "2"}})
    )
    await watch_until(api, "tenants", "ks4", ready_at_generation)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "ks4-owner",
        "projects",
        project("ks4", "big", budget={"hard": {"requests.cpu": "4"}}),
    )
    big = await until_kstatus(api, "projects", "big", "Failed", namespace="ks4-owner")
    stalled_like_ready(big, "BudgetExceeded")
    verdict = await kstatus_of(big)
    assert "requests.cpu: asks 4" in verdict.message, verdict

    await merge_patch(
        api, "projects", "big", {"spec": {"budget": {"hard": {"requests.cpu": "1"}}}}, "ks4-owner"
    )
    big = await until_kstatus(api, "projects", "big", "Current", namespace="ks4-owner")
    assert ready_at_generation(big), big["status"]
    assert (condition(big, "Stalled") or {}).get("status") != "True", big["status"]


async def test_project_with_too_long_a_namespace_fails_then_recovers(
    operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    name = "ks5-" + "n" * 46  # 50 characters: "<tenant>-owner" fits in 63
    long = "p" * 20  # "<tenant>-<project>" is 71 characters; the CRD's CEL admits it
    assert len(name) == 50 and len(f"{name}-{long}") > 63
    owner = f"{name}-owner"
    await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant(name, budget={"hard": {"requests.cpu": "2"}})
    )
    await watch_until(api, "tenants", name, ready_at_generation)
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, owner, "projects", project(name, long)
    )
    body = await until_kstatus(api, "projects", long, "Failed", namespace=owner)
    stalled_like_ready(body, "NameTooLong")
    assert f"{name}-{long}" in (await kstatus_of(body)).message

    # Fixed the only way a name can be: delete it, create it again with a shorter name.
    await custom.delete_namespaced_custom_object(GROUP, VERSION, owner, "projects", long)

    await until_deleted(api, "projects", long, owner, deadline=60)
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, owner, "projects", project(name, "web")
    )
    web = await until_kstatus(api, "projects", "web", "Current", namespace=owner)
    assert ready_at_generation(web), web["status"]
    assert web["status"]["namespaces"] == [f"{name}-web"]


async def test_kubeconfig_request_over_the_tenant_max_ttl_fails_then_recovers(
    operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "tenants",
        tenant("ks6", credentials={"defaultTTLSeconds": 600, "maxTTLSeconds": 3600}),
    )
    await watch_until(api, "tenants", "ks6", ready_at_generation)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "ks6-owner",
        "kubeconfigrequests",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KubeConfigRequest",
            "metadata": {"name": "long", "namespace": "ks6-owner"},
            "spec": {"role": "owner", "ttlSeconds": 7200},
        },
    )
    body = await until_kstatus(api, "kubeconfigrequests", "long", "Failed", namespace="ks6-owner")
    stalled_like_ready(body, "TTLExceedsTenantMax")
    assert "maxTTLSeconds 3600" in (await kstatus_of(body)).message

    await merge_patch(
        api, "kubeconfigrequests", "long", {"spec": {"ttlSeconds": 1200}}, "ks6-owner"
    )
    body = await until_kstatus(api, "kubeconfigrequests", "long", "Current", namespace="ks6-owner")
    assert ready_at_generation(body), body["status"]
    assert body["status"].get("secretName"), body["status"]


def writes(body: dict[str, Any]) -> str:
    """Who last wrote what, from managedFields: for a failure message."""
    return "; ".join(
        f"{m.get('manager')} {m.get('operation')}"
        f"{'/' + m['subresource'] if m.get('subresource') else ''} at {m.get('time')}"
        for m in body["metadata"].get("managedFields") or []
    )


async def event_tally(api: client.ApiClient, namespace: str, name: str) -> tuple[int, int]:
    """(Events about `name`, the sum of their counts): a repeated Event raises the
    second without adding to the first."""
    events = await client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    repeats = 0
    for event in events.items:
        series: int = event.series.count if event.series else 0
        repeats += max(int(event.count or 1), series)
    return len(events.items), repeats


async def test_stalled_project_causes_no_retry_traffic(
    operator: OperatorProcess, api: client.ApiClient
) -> None:
    """A terminal error is written once: after the first Stalled write, the Project's
    status is not written again, and for 60 s neither the Project nor its Tenant is
    written at all, and no Event is added or repeated. The 30 s are an observation
    window (a retry with backoff, or a resync that writes, would show in it: the e2e
    resync runs every 5 s), not a wait for something."""
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant("ks7", budget={"hard": {"requests.cpu": "2"}})
    )
    # The tenant's usage comes from its quotas' status, which the controller-manager
    # fills in a moment after they are created: a tenant write that the window should
    # not see.
    await watch_until(
        api,
        "tenants",
        "ks7",
        lambda o: ready_at_generation(o) and bool(o["status"].get("usage")),
    )
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "ks7-owner",
        "projects",
        project("ks7", "big", budget={"hard": {"requests.cpu": "4"}}),
    )
    stalled = await until_kstatus(api, "projects", "big", "Failed", namespace="ks7-owner")
    settled = await read(api, "projects", "big", "ks7-owner")
    assert settled["status"] == stalled["status"], (
        f"the status was written again after the first Stalled write: {writes(settled)}"
    )
    tenant_then = await read(api, "tenants", "ks7")

    async def warned() -> tuple[int, int] | None:
        tally = await event_tally(api, "ks7-owner", "big")
        return tally if tally[0] else None

    # The Event about the refusal is sent after the status write: wait for it, then
    # count from there.
    events = await eventually(warned, deadline=30, what="the BudgetExceeded Event")

    end = time.monotonic() + 60
    while time.monotonic() < end:
        big = await read(api, "projects", "big", "ks7-owner")
        assert big["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"], (
            f"the stalled Project was written again: {writes(big)}; status now "
            f"{json.dumps(big.get('status'))}, was {json.dumps(settled.get('status'))}"
        )
        ks7 = await read(api, "tenants", "ks7")
        assert ks7["metadata"]["resourceVersion"] == tenant_then["metadata"]["resourceVersion"], (
            f"the Tenant of a stalled Project was written again: {writes(ks7)}; status now "
            f"{json.dumps(ks7.get('status'))}, was {json.dumps(tenant_then.get('status'))}"
        )
        assert await event_tally(api, "ks7-owner", "big") == events, "the Event was repeated"
        await asyncio.sleep(1)
    assert (await kstatus_of(big)).status == "Failed"
