"""Faults: what happens while the operator is away, and when the control plane under
it restarts.

Kubenova puts a finalizer only where a deletion needs its cleanup (Tenants and
Projects: kubenova.io/teardown). Everything else it makes is deleted by the garbage
collector through ownerReferences, so deleting it completes with the operator stopped;
when the operator returns it rebuilds what its tenants still want.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp
import pytest
import yaml
from kubenova_e2e.build import REPO
from kubenova_e2e.controlplane import AUDIT_POLICY, LocalControlPlane
from kubenova_e2e.platform import OPERATOR_NAMESPACE, OperatorProcess, install_platform
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubenova_operator.credentials.tokens import binding_secret_name
from kubenova_operator.resources.uninstall import NAME as UNINSTALL_ACCESS

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    api_client,
    condition,
    eventually,
    kcr_body,
    merge_patch,
    project_body,
    ready_at_generation,
    tenant_body,
    token_api_client,
    until_deleted,
    until_healthy,
    watch_until,
)

pytestmark = pytest.mark.e2e

BUDGET = {"hard": {"requests.cpu": "2", "requests.memory": "4Gi", "pods": "20"}}
KOPF_FINALIZER = "kubenova.io/finalizer"
KOPF_DIFFBASE = "kubenova.io/last-handled-configuration"


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
        GROUP,
        VERSION,
        "fz1-owner",
        "kubeconfigrequests",
        kcr_body("mine", "fz1-owner", role="readonly"),
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
        await until_healthy(operator)

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


# --- the control plane under the operator restarts ----------------------------------
#
# These run against a control plane of their own (module-scoped), so restarting its
# API server or etcd disturbs no other test.

SELECTOR = "kubenova.io/tenant"


def _listers(api: client.ApiClient) -> dict[str, Callable[[], Awaitable[list[dict[str, Any]]]]]:
    """What a tenant is made of, by plural: each lister returns the labelled objects'
    labels."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    net, custom = client.NetworkingV1Api(api), client.CustomObjectsApi(api)

    def typed(call: Callable[..., Awaitable[Any]]) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        async def run() -> list[dict[str, Any]]:
            listed = await call(label_selector=SELECTOR)
            return [{"labels": i.metadata.labels or {}} for i in listed.items]

        return run

    def kubenova(plural: str) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        async def run() -> list[dict[str, Any]]:
            listed = await custom.list_cluster_custom_object(
                GROUP, VERSION, plural, label_selector=SELECTOR
            )
            return [{"labels": i["metadata"].get("labels") or {}} for i in listed["items"]]

        return run

    return {
        "namespaces": typed(core.list_namespace),
        "serviceaccounts": typed(core.list_service_account_for_all_namespaces),
        "resourcequotas": typed(core.list_resource_quota_for_all_namespaces),
        "limitranges": typed(core.list_limit_range_for_all_namespaces),
        "secrets": typed(core.list_secret_for_all_namespaces),
        "rolebindings": typed(rbac.list_role_binding_for_all_namespaces),
        "clusterroles": typed(rbac.list_cluster_role),
        "clusterrolebindings": typed(rbac.list_cluster_role_binding),
        "networkpolicies": typed(net.list_network_policy_for_all_namespaces),
        "kubeconfigrequests": kubenova("kubeconfigrequests"),
        "capsulesyncs": kubenova("capsulesyncs"),
        "velasyncs": kubenova("velasyncs"),
    }


# The product's audit policy, but recording the operator's Lease writes too: which
# replica took the Lease, and when, is what "no write before it led" is measured from.
LEASE_WRITES_RULE = """rules:
  - level: Metadata
    verbs: [create, update, patch]
    users: [system:serviceaccount:kubenova-system:kubenova-operator]
    resources:
      - group: coordination.k8s.io
        resources: [leases]
"""


@pytest.fixture(scope="module")
def plane() -> Iterator[LocalControlPlane]:
    plane = LocalControlPlane()
    policy = plane.workdir / "audit-policy-with-leases.yaml"
    product = AUDIT_POLICY.read_text()
    assert "\nrules:\n" in product
    policy.write_text(product.replace("\nrules:\n", "\n" + LEASE_WRITES_RULE, 1))
    plane.audit_policy = policy
    plane.start(controllers=False)
    try:
        install_platform(plane.kubeconfig)
        plane.start_controllers()
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
async def faulty(
    plane: LocalControlPlane,
) -> AsyncIterator[tuple[OperatorProcess, client.ApiClient]]:
    """An operator and an API client on the module's own control plane."""
    op = OperatorProcess(plane.kubeconfig, plane.workdir, KUBENOVA_POD_NAME="faults-operator")
    op.start()
    await until_healthy(op, deadline=90)
    api = await api_client(plane.kubeconfig)
    try:
        yield op, api
    finally:
        await api.close()
        op.stop()


async def _patiently(probe: Callable[[], Awaitable[Any]]) -> Any:
    """A probe that also treats a connection refused (the API server restarting) as
    not yet."""
    try:
        return await probe()
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


async def _create_tenants(api: client.ApiClient, names: list[str]) -> None:
    custom = client.CustomObjectsApi(api)
    for name in names:
        await custom.create_cluster_custom_object(
            GROUP, VERSION, "tenants", tenant_body(name, budget=BUDGET)
        )


async def _owner_namespaces(api: client.ApiClient, names: list[str]) -> list[str]:
    listed = await client.CoreV1Api(api).list_namespace(label_selector="kubenova.io/tenant")
    have = {n.metadata.name for n in listed.items}
    return [n for n in names if f"{n}-owner" in have]


async def _create_projects(api: client.ApiClient, names: list[str]) -> None:
    """A project in each tenant, once its owner namespace exists (the tenant's pass
    makes it), riding out an API server that is restarting."""
    custom = client.CustomObjectsApi(api)
    for name in names:

        async def create(n: str = name) -> bool:
            try:
                await custom.create_namespaced_custom_object(
                    GROUP, VERSION, f"{n}-owner", "projects", project_body(n, "app")
                )
            except ApiException as exc:
                if exc.status == 409:
                    return True
                raise
            return True

        await eventually(partial(_patiently, create), deadline=180, interval=0.5, what=name)


async def _all_ready(api: client.ApiClient, names: list[str]) -> bool:
    custom = client.CustomObjectsApi(api)
    tenants = await custom.list_cluster_custom_object(GROUP, VERSION, "tenants")
    projects = await custom.list_cluster_custom_object(GROUP, VERSION, "projects")
    ready = {t["metadata"]["name"] for t in tenants["items"] if ready_at_generation(t)}
    ready_projects = {
        p["metadata"]["namespace"].removesuffix("-owner")
        for p in projects["items"]
        if ready_at_generation(p) and p["status"].get("namespaces")
    }
    missing = [n for n in names if n not in ready or n not in ready_projects]
    return not missing


async def _counts(api: client.ApiClient) -> dict[str, Counter[str]]:
    """Per tenant: how many objects of each kind carry its label."""
    per: dict[str, Counter[str]] = {}
    for plural, lister in _listers(api).items():
        for item in await lister():
            per.setdefault(item["labels"][SELECTOR], Counter())[plural] += 1
    return per


def _shape(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items()))


async def _converged(
    api: client.ApiClient, names: list[str], reference: str, deadline: float
) -> dict[str, Counter[str]]:
    """Every tenant and project Ready at its generation, and every tenant made of
    exactly what the reference tenant (built with no fault) is made of: nothing
    missing, nothing twice."""
    await eventually(
        lambda: _patiently(lambda: _all_ready(api, names)),
        deadline=deadline,
        interval=1,
        what=f"{len(names)} tenants Ready",
    )

    async def same_shape() -> bool:
        counts = await _counts(api)
        want = _shape(counts[reference])
        wrong = {n: _shape(counts.get(n, Counter())) for n in names}
        wrong = {n: c for n, c in wrong.items() if c != want}
        assert not wrong, f"want {want}; differ: {dict(list(wrong.items())[:3])}"
        return True

    await eventually(lambda: _patiently(same_shape), deadline=60, interval=1, what="shapes")
    return await _counts(api)


@pytest.fixture(scope="module")
async def reference(faulty: tuple[OperatorProcess, client.ApiClient]) -> str:
    """A tenant built with no fault: what every other one must be made of."""
    _, api = faulty
    await _create_tenants(api, ["ref"])
    await _create_projects(api, ["ref"])
    await eventually(lambda: _all_ready(api, ["ref"]), deadline=120, what="ref Ready")
    return "ref"


async def _restart_during_build(
    plane: LocalControlPlane,
    *,
    faulty: tuple[OperatorProcess, client.ApiClient],
    reference: str,
    component: str,
    prefix: str,
    tenants: int,
) -> float:
    op, api = faulty
    names = [f"{prefix}{i}" for i in range(tenants)]
    await _create_tenants(api, names)
    # Mid-build: the operator is frozen as soon as a first owner namespace is seen, so
    # however fast the machine, most of the build is still to do when the component
    # dies; it is thawed while the component is down, to meet the outage with its
    # work in flight.
    await eventually(
        lambda: _owner_namespaces(api, names),
        deadline=120,
        interval=0.1,
        what="a first owner namespace",
    )
    with op.frozen():
        # (namespaces are a pass's first wave: all twenty may exist by now; Ready is
        # the end of the build)
        done = await _ready_tenants(api, names)
        started = time.monotonic()
        await asyncio.to_thread(plane.take_down, component)
    await asyncio.sleep(2)  # the outage itself: what the operator must ride out
    await asyncio.to_thread(plane.bring_back, component)
    down = time.monotonic() - started
    assert len(done) < tenants, "the build was over before the restart"
    await _create_projects(api, names)
    await _converged(api, names, reference, deadline=300)
    assert op.alive(), op.tail()
    print(
        f"{component} killed with {len(done)}/{tenants} tenants Ready; down {down:.1f}s; "
        f"control-plane restarts so far {plane.respawns}"
    )
    return down


async def test_api_server_restart_during_a_build(
    plane: LocalControlPlane, faulty: tuple[OperatorProcess, client.ApiClient], reference: str
) -> None:
    """kill -9 of kube-apiserver while 20 tenants with a project each are being
    built: the operator reconnects, and every tenant converges, once."""
    await _restart_during_build(
        plane,
        faulty=faulty,
        reference=reference,
        component="kube-apiserver",
        prefix="fa",
        tenants=20,
    )


async def test_etcd_restart_during_a_build(
    plane: LocalControlPlane, faulty: tuple[OperatorProcess, client.ApiClient], reference: str
) -> None:
    """kill -9 of etcd mid-build: the API server answers errors until it is back;
    the operator's passes retry (backoff) and converge, once."""
    await _restart_during_build(
        plane, faulty=faulty, reference=reference, component="etcd", prefix="fe", tenants=20
    )


async def _delete(call: Callable[[], Awaitable[Any]]) -> None:
    """Delete something, riding out an API server that has just restarted."""

    async def attempt() -> bool:
        try:
            await call()
        except ApiException as exc:
            return exc.status == 404
        return True

    await eventually(partial(_patiently, attempt), deadline=60, what="a deletion")


async def test_watch_expiry_is_recovered_with_a_relist(
    plane: LocalControlPlane, faulty: tuple[OperatorProcess, client.ApiClient]
) -> None:
    """The operator is frozen (SIGSTOP) while a child and a KubeConfigRequest are
    deleted, etcd is compacted and the API server restarted: every watch it resumes is
    answered 410 Gone. kopf lists afresh, which reports no deletion; the operator's
    relist forgets what is gone, rebuilds the child and unbinds the deleted request's
    identity."""
    op, api = faulty
    assert op.proc is not None and op.alive()
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant_body("fw", budget=BUDGET)
    )
    await watch_until(api, "tenants", "fw", ready_at_generation, deadline=120)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "fw-owner",
        "kubeconfigrequests",
        kcr_body("gone", "fw-owner", role="readonly"),
    )
    await watch_until(api, "kubeconfigrequests", "gone", ready_at_generation, namespace="fw-owner")
    rbac = client.RbacAuthorizationV1Api(api)
    identity = {"kind": "ServiceAccount", "name": "kcr-gone", "namespace": "fw-owner"}

    async def bound() -> bool:
        binding = await rbac.read_namespaced_role_binding("kubenova:readonly", "fw-apps")
        return any(
            {"kind": s.kind, "name": s.name, "namespace": s.namespace} == identity
            for s in binding.subjects or []
        )

    await eventually(bound, deadline=30, what="the request's identity bound")
    before = (await client.CoreV1Api(api).list_namespace()).metadata.resource_version
    log_before = len(op.log.read_text(errors="replace"))

    os.kill(op.proc.pid, signal.SIGSTOP)
    try:
        # The restart cuts the operator's watches first, so nothing about what follows
        # is already in flight to it.
        await asyncio.to_thread(plane.restart, "kube-apiserver", kill=True)

        await _delete(
            partial(
                custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                "fw-owner",
                "kubeconfigrequests",
                "gone",
            )
        )
        await _delete(
            partial(rbac.delete_namespaced_role_binding, "kubenova:tenant-owner", "fw-apps")
        )
        # Every resourceVersion the operator holds is now compacted away.
        revision = await asyncio.to_thread(plane.compact_etcd)
        assert revision > int(before)
    finally:
        os.kill(op.proc.pid, signal.SIGCONT)

    async def healed() -> bool:
        await rbac.read_namespaced_role_binding("kubenova:tenant-owner", "fw-apps")
        return not await bound()

    await eventually(lambda: _patiently(healed), deadline=90, interval=1, what="relisted")
    log = op.log.read_text(errors="replace")[log_before:]
    # kopf logs this exactly when a watch is answered 410 Gone (and then lists afresh).
    assert "Restarting the watch-stream" in log
    assert "KubeConfigRequest fw-owner/gone was deleted unseen" in log
    await watch_until(api, "tenants", "fw", ready_at_generation)


# --- two replicas -------------------------------------------------------------------

LEASE_SECONDS = 15  # the default (config.py lease_seconds)


async def _holder(api: client.ApiClient) -> str | None:
    lease = await client.CoordinationV1Api(api).read_namespaced_lease(
        "kubenova-operator", OPERATOR_NAMESPACE
    )
    return lease.spec.holder_identity


def _ready(op: OperatorProcess) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{op.health_port}/readyz", timeout=2
        ) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _writes_of(plane: LocalControlPlane, pod: str) -> list[tuple[datetime, str, int]]:
    """Every write of the operator process `pod` (its userAgent names it), as (when,
    resource, response code)."""
    writes = []
    for path in plane.audit_log_files():
        for line in path.read_text(errors="replace").splitlines():
            if f"({pod})" not in line:
                continue
            event = json.loads(line)
            if event.get("stage") != "ResponseComplete":
                continue
            if event.get("verb") in ("create", "update", "patch", "delete"):
                ref = event.get("objectRef") or {}
                stamp = datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))
                code = int((event.get("responseStatus") or {}).get("code") or 0)
                resource = "kubenova-api-tls" if ref.get("name") == "kubenova-api-tls" else ""
                writes.append((stamp, resource or str(ref.get("resource")), code))
    return writes


def _writes_by(plane: LocalControlPlane, pod: str) -> list[datetime]:
    """When the operator process `pod` wrote anything but the Lease (the election
    itself) and its aggregated API's own registration (every replica serves it and
    applies the same APIService and serving Secret)."""
    skip = ("leases", "apiservices", "kubenova-api-tls")
    return [when for when, resource, _ in _writes_of(plane, pod) if resource not in skip]


def _led_from(plane: LocalControlPlane, pod: str) -> datetime:
    """When `pod` first took the Lease: its first successful write of it (a standby
    only reads the Lease until it is free; the write that takes it is its first)."""
    taken = [w for w, r, code in _writes_of(plane, pod) if r == "leases" and code < 300]
    assert taken, f"{pod} never wrote the Lease"
    return min(taken)


async def _failover(
    api: client.ApiClient, leader: OperatorProcess, standby_name: str, *, kill: bool = True
) -> tuple[float, float, datetime]:
    """kill -9 the leader (or, with `kill=False`, SIGTERM it: a rolling update or a
    drain); return (when it was stopped, seconds until the standby held the Lease,
    the wall-clock time it did)."""
    killed = time.monotonic()
    leader.stop(kill=kill)
    await eventually(
        lambda: _patiently(lambda: _holder_is(api, standby_name)),
        deadline=LEASE_SECONDS * 3,
        interval=0.1,
        what=f"{standby_name} to hold the Lease",
    )
    return killed, time.monotonic() - killed, datetime.now(UTC)


async def _ready_tenants(api: client.ApiClient, names: list[str]) -> set[str]:
    listed = await client.CustomObjectsApi(api).list_cluster_custom_object(
        GROUP, VERSION, "tenants"
    )
    return {t["metadata"]["name"] for t in listed["items"] if ready_at_generation(t)} & set(names)


async def _tenants_ready(api: client.ApiClient, names: list[str]) -> bool:
    return set(names) <= await _ready_tenants(api, names)


async def _holder_is(api: client.ApiClient, name: str) -> bool:
    return await _holder(api) == name


async def test_two_replicas_fail_over_within_the_lease(
    plane: LocalControlPlane, faulty: tuple[OperatorProcess, client.ApiClient], reference: str
) -> None:
    """Two operator processes, one Lease. Both are ready (each serves the aggregated
    API from its own stores); only the holder writes. kill -9 of the leader, in steady
    state and during a build: the standby leads within about one Lease duration,
    converges every tenant once, and wrote nothing before it led."""
    first, api = faulty
    assert await _holder(api) == "faults-operator"
    second = OperatorProcess(
        plane.kubeconfig,
        plane.workdir / "second",
        KUBENOVA_POD_NAME="faults-second",
        KUBENOVA_SHIM_UNREGISTER_ON_EXIT="false",
    )
    (plane.workdir / "second").mkdir(exist_ok=True)
    third = OperatorProcess(
        plane.kubeconfig,
        plane.workdir / "third",
        KUBENOVA_POD_NAME="faults-third",
        KUBENOVA_SHIM_UNREGISTER_ON_EXIT="false",
    )
    (plane.workdir / "third").mkdir(exist_ok=True)
    second.start()
    try:
        # Ready while standing by: readiness is the ability to serve, not leadership.
        await eventually(lambda: _patiently(lambda: _ok(_ready(second))), deadline=90)
        assert await _holder(api) == "faults-operator"

        # Steady state: kill the leader, then ask for a new tenant at once.
        killed, steady, steady_at = await _failover(api, first, "faults-second")
        await _create_tenants(api, ["fs0"])
        await eventually(lambda: _tenants_ready(api, ["fs0"]), deadline=120, interval=0.2)
        steady_ready = time.monotonic() - killed
        await asyncio.sleep(2)  # the audit log's buffer reaches the file
        led = _led_from(plane, "faults-second")
        assert led <= steady_at
        early = [t for t in _writes_by(plane, "faults-second") if t < led]
        assert not early, f"the standby wrote before it led ({led}): {early[:5]}"

        # During a build: a fresh standby, ten tenants, kill the leader mid-way.
        third.start()
        await eventually(lambda: _patiently(lambda: _ok(_ready(third))), deadline=90)
        names = [f"fb{i}" for i in range(10)]
        await _create_tenants(api, names)
        await eventually(lambda: _owner_namespaces(api, names), deadline=60, what="build begun")
        killed, building, building_at = await _failover(api, second, "faults-third")
        await eventually(lambda: _tenants_ready(api, names), deadline=180, interval=0.2)
        building_ready = time.monotonic() - killed
        await _create_projects(api, names)
        await _converged(api, names, reference, deadline=180)
        led = _led_from(plane, "faults-third")
        assert led <= building_at
        early = [t for t in _writes_by(plane, "faults-third") if t < led]
        assert not early, f"the standby wrote before it led ({led}): {early[:5]}"
        print(
            f"failover (Lease {LEASE_SECONDS}s): steady state: leads after "
            f"{steady:.1f}s, a tenant created after the kill Ready after {steady_ready:.1f}s; "
            f"during a build: leads after {building:.1f}s, 10 tenants Ready after "
            f"{building_ready:.1f}s"
        )
        for took_over in (steady, building):
            # Expiry is judged from when the standby last saw the Lease change, checked
            # every retry period (2 s): one Lease duration, give or take two periods.
            assert took_over < LEASE_SECONDS + 2 * 2 + 2, took_over

        # A clean stop (SIGTERM: a rolling update, a drain) gives the Lease up as the
        # replica exits, so the standby leads at its next try instead of after the
        # Lease duration.
        second.start()
        await eventually(lambda: _patiently(lambda: _ok(_ready(second))), deadline=90)
        signalled = time.monotonic()
        third.stop()
        exited = time.monotonic()
        await eventually(
            lambda: _patiently(lambda: _holder_is(api, "faults-second")),
            deadline=LEASE_SECONDS * 3,
            interval=0.1,
            what="faults-second to hold the Lease",
        )
        graceful = time.monotonic() - exited
        print(
            f"failover after SIGTERM of the leader: it exited after {exited - signalled:.1f}s, "
            f"the standby led {graceful:.1f}s later"
        )
        assert graceful < 2 * 2 + 1, graceful  # two retry periods, and a second of slack
    finally:
        second.stop()
        third.stop()


async def _ok(value: bool) -> bool:
    return value


# --- chaos ---------------------------------------------------------------------------
#
# `make chaos`: KUBENOVA_CHAOS_TENANTS=200 KUBENOVA_CHAOS_KILLS=20. The suite runs a
# short version (8 tenants, 3 kills); both restart the API server once and etcd once.

# What a restart may log with a traceback: the connection failing under it, or the API
# server answering that its etcd is gone (a 500/503 carrying etcd's or gRPC's words).
CONNECTION_ERRORS = (
    "clientconnectorerror",
    "serverdisconnectederror",
    "clientoserror",
    "clientpayloaderror",
    "transferencodingerror",
    "contentlengtherror",
    "connection refused",
    "connectionreseterror",
    "connectionrefusederror",
    "servertimeouterror",
    "timeouterror",
    "etcdserver",
    "code = unavailable",
    "context deadline exceeded",
    "service unavailable",
    "storage is (re)initializing",
    "the request has been made before all known http paths have been installed",
)


# How Python joins a chained exception's tracebacks in one log record.
CHAINED = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)


def _tracebacks(log: str) -> tuple[int, list[str]]:
    """(tracebacks caused by the restarts' connection errors, the others: their
    exception line and the log line they came with). A chained exception is one
    traceback: the connection error a restart causes is often its cause (aiohttp's
    TransferEncodingError, when a restarting API server cuts a chunked response short,
    is the cause of the ClientPayloadError the client raises)."""
    connection, other = 0, []
    pieces = log.split("Traceback (most recent call last):")
    before, chain = pieces[0], ""
    for block in pieces[1:]:
        chain += block
        if block.rstrip().endswith(CHAINED):
            continue
        lines = block.splitlines()
        # The traceback ends at the first line that is not indented (its exception).
        tail = next((ln for ln in lines[1:] if ln and not ln.startswith(" ")), "")
        context = before.rstrip().splitlines()[-1:] or [""]
        text = (context[0] + chain[:16000]).lower()
        if any(marker in text for marker in CONNECTION_ERRORS):
            connection += 1
        else:
            other.append(f"{tail} (after: {context[0][:300]}) {chain[-1500:]}")
        before, chain = block, ""
    return connection, other


def test_tracebacks_are_classified_by_their_whole_chain() -> None:
    """The chaos test's reading of the operator's log: a chain whose cause or whose
    last exception is a connection error counts as one restart traceback, whatever
    its other links; a chain with none is reported, with the log line it came with."""
    frame = '  File "x.py", line 1, in f\n    f()\n'
    cut = "aiohttp.http_exceptions.TransferEncodingError: 400, message:\n  Not enough data"
    payload = "aiohttp.client_exceptions.ClientPayloadError: Response payload is not completed"
    bug = "KeyError: 'spec'"
    for first, last, restart in [
        (cut, payload, True),
        (bug, payload, True),
        (payload, bug, True),
        (bug, "ValueError: x", False),
    ]:
        for link in CHAINED:
            log = (
                "2026-12-07 14:00:51 ERROR kopf.activities Activity 'configure' failed.\n"
                f"Traceback (most recent call last):\n{frame}{first}\n\n{link}\n\n"
                f"Traceback (most recent call last):\n{frame}{last}\n"
                "2026-12-07 14:00:52 INFO next line\n"
            )
            connection, other = _tracebacks(log + log)
            assert (connection, len(other)) == ((2, 0) if restart else (0, 2)), (first, last)
            if not restart:
                assert "kopf.activities" in other[0] and "ValueError" in other[0]


async def _chaos_build(api: client.ApiClient, names: list[str]) -> None:
    """Tenants, then for each a Project and a KubeConfigRequest as its owner namespace
    appears, riding out whatever is being restarted."""
    await _create_tenants(api, names)
    await _create_projects(api, names)
    custom = client.CustomObjectsApi(api)
    for name in names:

        async def request(n: str = name) -> bool:
            try:
                await custom.create_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    f"{n}-owner",
                    "kubeconfigrequests",
                    kcr_body("ci", f"{n}-owner", role="readonly"),
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
            return True

        await eventually(partial(_patiently, request), deadline=180, interval=0.5, what=name)


async def _requests_ready(api: client.ApiClient, names: list[str]) -> bool:
    listed = await client.CustomObjectsApi(api).list_cluster_custom_object(
        GROUP, VERSION, "kubeconfigrequests"
    )
    ready = {
        r["metadata"]["namespace"].removesuffix("-owner")
        for r in listed["items"]
        if r["metadata"]["name"] == "ci" and ready_at_generation(r)
    }
    return set(names) <= ready


async def test_chaos(
    plane: LocalControlPlane, faulty: tuple[OperatorProcess, client.ApiClient]
) -> None:
    """Random kill -9 of the operator, one API server restart and one etcd restart,
    all during a build of tenants with a Project and a KubeConfigRequest each: in the
    end everything is Ready, every tenant is made of exactly what a tenant built in
    peace is, nothing is left that belongs to no tenant, and the only tracebacks in
    the operator's log are the restarts' connection errors."""
    first, api = faulty
    first.stop()  # (if an earlier test left it running) this test's own process leads
    tenants = int(os.environ.get("KUBENOVA_CHAOS_TENANTS", "8"))
    kills = int(os.environ.get("KUBENOVA_CHAOS_KILLS", "3"))
    rng = random.Random(int(os.environ.get("KUBENOVA_CHAOS_SEED", "20")))
    workdir = plane.workdir / "chaos"
    workdir.mkdir(exist_ok=True)
    op = OperatorProcess(plane.kubeconfig, workdir, KUBENOVA_POD_NAME="faults-chaos")
    op.start()
    started = time.monotonic()
    try:
        await eventually(lambda: _patiently(lambda: _holder_is(api, "faults-chaos")), deadline=60)
        await _chaos_build(api, ["cref"])
        await eventually(lambda: _patiently(lambda: _requests_ready(api, ["cref"])), deadline=120)
        names = [f"cx{i}" for i in range(tenants)]
        build = asyncio.create_task(_chaos_build(api, names))
        plan = ["kill"] * kills + ["kube-apiserver", "etcd"]
        rng.shuffle(plan)
        for step in plan:
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            if step == "kill":
                op.stop(kill=True)
                op.start()
            else:
                await asyncio.to_thread(plane.restart, step, kill=True, down_seconds=1)
        await build
        await _converged(api, names, "cref", deadline=600)
        await eventually(
            lambda: _patiently(lambda: _requests_ready(api, names)), deadline=120, interval=1
        )
        counts = await _counts(api)
        tenants_now = {
            t["metadata"]["name"]
            for t in (
                await client.CustomObjectsApi(api).list_cluster_custom_object(
                    GROUP, VERSION, "tenants"
                )
            )["items"]
        }
        orphans = {t: dict(c) for t, c in counts.items() if t not in tenants_now}
        assert not orphans, orphans
        connection, other = _tracebacks(op.log.read_text(errors="replace"))
        assert not other, other[:10]
        shape = _shape(counts["cref"])
        print(
            f"chaos: {tenants} tenants (+ Project + KubeConfigRequest each), {kills} kill -9, "
            f"1 kube-apiserver and 1 etcd restart: all Ready after "
            f"{time.monotonic() - started:.0f}s; each tenant {sum(shape.values())} objects "
            f"{shape}; 0 orphans; {connection} connection-error tracebacks, 0 others"
        )
    finally:
        op.stop()


# --- uninstall (last: it removes Kubenova from the module's control plane) -----------


async def _token_works(cluster: Cluster, token: str, namespace: str) -> bool:
    user = await token_api_client(cluster, token)
    try:
        await client.CoreV1Api(user).list_namespaced_config_map(namespace)
    except ApiException as exc:
        if exc.status in (401, 403):
            return False
        raise
    finally:
        await user.close()
    return True


async def test_uninstall_keeps_tenants_and_revokes_credentials(
    plane: LocalControlPlane, faulty: tuple[OperatorProcess, client.ApiClient]
) -> None:
    """The documented uninstall, `kubectl delete -k manifests/` in one step, with
    tenants present (deletionPolicy Delete even): nothing stays Terminating (not the
    Tenants, not the CRDs, not the operator's namespace), the tenants' namespaces and
    workloads stay, and every token Kubenova issued stops working."""
    first, api = faulty
    first.stop()
    cluster = Cluster(kubeconfig=plane.kubeconfig, kubectl_binary=[str(plane.binary), "kubectl"])
    (plane.workdir / "last").mkdir(exist_ok=True)
    op = OperatorProcess(plane.kubeconfig, plane.workdir / "last", KUBENOVA_POD_NAME="faults-last")
    op.start()
    try:
        await eventually(lambda: _patiently(lambda: _holder_is(api, "faults-last")), deadline=60)
        custom = client.CustomObjectsApi(api)
        await custom.create_cluster_custom_object(
            GROUP, VERSION, "tenants", tenant_body("fu1", budget=BUDGET, deletionPolicy="Delete")
        )
        await watch_until(api, "tenants", "fu1", ready_at_generation, deadline=120)
        await custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            "fu1-owner",
            "projects",
            project_body("fu1", "app", deletionPolicy="Delete"),
        )
        await watch_until(api, "projects", "app", ready_at_generation, namespace="fu1-owner")
        await custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            "fu1-owner",
            "kubeconfigrequests",
            kcr_body("mine", "fu1-owner", role="readonly"),
        )
        await watch_until(
            api, "kubeconfigrequests", "mine", ready_at_generation, namespace="fu1-owner"
        )
        secret = await client.CoreV1Api(api).read_namespaced_secret("mine-kubeconfig", "fu1-owner")
        kubeconfig = yaml.safe_load(base64.b64decode(secret.data["kubeconfig"]))
        token = kubeconfig["users"][0]["user"]["token"]
        assert await _token_works(cluster, token, "fu1-app")
        await client.CoreV1Api(api).create_namespaced_config_map(
            "fu1-app",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="workload"), data={"keep": "me"}),
        )

        # While there are tenants, the operator holds its own access (the finalizer
        # per replica, controllers/uninstall.py), so the one-step uninstall below
        # cannot take it away before the operator has let go.
        finalizers = cluster.kubectl(
            "get", "serviceaccount", "kubenova-operator", "-n", OPERATOR_NAMESPACE,
            "-o", "jsonpath={.metadata.finalizers}",
        ).stdout  # fmt: skip
        assert "kubenova.io/uninstall-faults-last" in finalizers, finalizers
        for kind in ("clusterrole", "clusterrolebinding"):
            cluster.kubectl("get", kind, UNINSTALL_ACCESS)  # (fails if it is not there)
        _owner_cannot_take_the_uninstall_access(cluster, "fu1-owner")

        # The documented uninstall (docs/uninstall.md), in one step: the CRDs, the
        # operator's RBAC, its ServiceAccount and namespace go in the same second.
        began = time.monotonic()
        result = await asyncio.to_thread(
            cluster.kubectl,
            "delete",
            "-k",
            str(REPO / "manifests"),
            "--wait=false",
            # The e2e platform runs the operator as a process: no Deployment.
            "--ignore-not-found",
            check=False,
        )
        assert result.returncode == 0, result.stderr

        async def crds_gone() -> bool:
            listed = await client.ApiextensionsV1Api(api).list_custom_resource_definition()
            return not [c for c in listed.items if c.spec.group == GROUP]

        # After the whole module ran, some sixty tenants with projects and requests
        # are let go here (about 400 API calls on a busy machine).
        await eventually(crds_gone, deadline=240, interval=1, what="Kubenova's CRDs deleted")
        print(f"uninstall: CRDs gone {time.monotonic() - began:.1f}s after kubectl delete -k")
        await _operator_namespace_gone(api, cluster, op)
        print(f"uninstall: {OPERATOR_NAMESPACE} gone {time.monotonic() - began:.1f}s after it")
        terminating = [
            n.metadata.name
            for n in (await client.CoreV1Api(api).list_namespace()).items
            if n.metadata.deletion_timestamp
        ]
        assert not terminating, terminating
        for name in ("fu1-owner", "fu1-apps", "fu1-app"):
            await client.CoreV1Api(api).read_namespace(name)  # kept

        async def uninstall_access_gone() -> bool:
            rbac = client.RbacAuthorizationV1Api(api)
            roles = await rbac.list_cluster_role(
                label_selector="app.kubernetes.io/part-of=kubenova"
            )
            bindings = await rbac.list_cluster_role_binding(
                label_selector="app.kubernetes.io/part-of=kubenova"
            )
            left = [r.metadata.name for r in roles.items] + [
                b.metadata.name for b in bindings.items
            ]
            # Only the per-tenant RBAC Kubenova built for the tenants (kept) may remain.
            return UNINSTALL_ACCESS not in left and "kubenova:operator" not in left

        # The let-go's own access goes with the operator's namespace (its owner).
        await eventually(uninstall_access_gone, deadline=60, interval=1, what="no operator RBAC")
        kept = await client.CoreV1Api(api).read_namespaced_config_map("workload", "fu1-app")
        assert kept.data == {"keep": "me"}
        # Revoked: its binding Secret is gone (the API server may cache a validated
        # token for 10 s).
        await eventually(
            lambda: _negate(_token_works(cluster, token, "fu1-app")),
            deadline=30,
            interval=1,
            what="the issued token refused",
        )
    finally:
        op.stop()


def _owner_cannot_take_the_uninstall_access(cluster: Cluster, owner_namespace: str) -> None:
    """From a tenant owner's seat (the token of the owner ServiceAccount Kubenova made):
    the hold on the operator's ServiceAccount and the let-go's ClusterRole are out of
    reach: not removable, not deletable, and not bindable in the tenant's own namespace
    (the API server's escalation check: the owner does not hold its rules)."""
    token = cluster.create_token("kubenova-owner", owner_namespace)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "borrowed", "namespace": owner_namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": UNINSTALL_ACCESS,
        },
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": owner_namespace}],
    }
    attempts = {
        "drop the hold": (
            "patch", "serviceaccount", "kubenova-operator", "-n", OPERATOR_NAMESPACE,
            "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
        ),
        "delete the binding": ("delete", "clusterrolebinding", UNINSTALL_ACCESS),
        "bind the role": ("create", "-f", "-"),
    }  # fmt: skip
    for what, args in attempts.items():
        stdin = json.dumps(binding) if what == "bind the role" else None
        result = cluster.token_kubectl(token, *args, stdin=stdin)
        assert result.returncode != 0 and "forbidden" in result.stderr.lower(), (
            what,
            result.stdout,
            result.stderr,
        )


async def _operator_namespace_gone(
    api: client.ApiClient, cluster: Cluster, op: OperatorProcess
) -> None:
    """Wait for the operator's namespace to go (it waits for the ServiceAccount the
    operator holds until it has let go); if it does not, say what holds it."""
    try:
        await eventually(
            lambda: _namespace_gone(api, OPERATOR_NAMESPACE),
            deadline=90,
            interval=1,
            what=f"{OPERATOR_NAMESPACE} deleted",
        )
    except AssertionError as exc:
        left = cluster.kubectl(
            "get", "namespace,serviceaccount", "-n", OPERATOR_NAMESPACE, "-o", "yaml",
            check=False,
        ).stdout  # fmt: skip
        raise AssertionError(f"{exc}\n{left}\noperator:\n{op.tail(40)}") from None


async def _negate(value: Awaitable[bool]) -> bool:
    return not await value
