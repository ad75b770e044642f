"""`python -m kubenova_operator` / `kubenova-operator`: run the operator.

kopf runs cluster-wide with deliberate settings (below), inside a Lease-based leader
election so that a second replica waits instead of double-writing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from typing import Any

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.leaderelection import electionconfig, leaderelection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from . import __version__, controllers
from .config import Settings, get_settings
from .controllers.capsulesync import reconcile_capsulesync
from .controllers.children import prime_stores
from .controllers.context import Context, context_of
from .controllers.kubeconfigrequest import mint
from .controllers.queue import TenantQueue
from .controllers.tenant import reconcile_tenant
from .controllers.uninstall import let_go_at_shutdown
from .controllers.velasync import reconcile_velasync
from .controllers.wiring import build_level_queues, configure_kopf_storage
from .integrations import CAPSULE, KUBEVELA
from .kube.client import Kube, api_client, in_cluster, service_account_login
from .kube.kinds import REGISTRY
from .observability.health import Leadership, Serving, start_health_server
from .observability.logs import configure_logging
from .observability.metrics import serve_metrics
from .observability.tracing import configure_tracing
from .resources.labels import MANAGED_SELECTOR
from .shim.registration import APISERVICE_NAME
from .shim.server import Shim

# Seconds a shutdown may spend finishing an uninstall's let-go: within the pod's
# terminationGracePeriodSeconds (60, manifests/operator/deployment.yaml), with time to
# spare for the rest of the shutdown.
UNINSTALL_AT_SHUTDOWN = 40

logger = logging.getLogger("kubenova_operator")
assert controllers  # imported for its side effect: registering the handlers


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster credentials, else the kubeconfig (KUBECONFIG or ~/.kube/config).
    Not kopf.login_with_service_account: it always dials `kubernetes.default.svc`,
    which needs cluster DNS and ignores KUBERNETES_SERVICE_HOST/PORT."""
    if in_cluster():
        return service_account_login()
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Set kopf up, and build the one Context every handler reaches through kopf's
    memo (`memo.context`, read with controllers/context.py `context_of`)."""
    own = get_settings()
    # kopf only watches: every handler is an on.event handler, so kopf keeps no
    # progress or last-handled annotations and puts no finalizer of its own on anything
    # (earlier releases' leftovers are removed: controllers/finalizers.py). Passes run
    # in Kubenova's queues, time-driven work in its scheduler.
    # Leader election is ours (a Lease); kopf's peering objects are not needed.
    settings.peering.standalone = True
    settings.peering.mandatory = False
    # Nothing for kopf to remember between events (no diff base, no handler progress).
    configure_kopf_storage(settings)
    # Long watches, renewed before API servers or load balancers cut them.
    settings.watching.server_timeout = 290
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    # Events: only what handlers say on purpose (controllers/events.py) and warnings.
    settings.posting.level = logging.WARNING
    # No cap on per-object workers (kopf's default): a capped pool counts workers
    # that idle for queueing.idle_timeout, so the burst of events when a watch starts
    # (every child listed) queued for many seconds and deletions were seen late.
    # Reconciles are serialised per tenant by the queue, not by kopf.
    settings.queueing.error_delays = [1, 2, 5, 10, 30, 60]
    # Kubenova's children only: the API server filters, the operator holds only ours.
    for child in REGISTRY:
        if child.watched_by_label:
            settings.watching.label_selectors[child.group or "v1", child.plural] = MANAGED_SELECTOR
    # Capsule Tenants: only Kubenova's (controllers/capsulesync.py).
    settings.watching.label_selectors["capsule.clastix.io", "tenants"] = MANAGED_SELECTOR
    kube = await Kube.connect()
    try:
        await start(kube, own, memo)
    except BaseException:
        # kopf retries a failed startup (an API server restarting mid-response cuts a
        # discovery or a LIST short) and the next try connects afresh: this try's
        # client is closed, not left open.
        await kube.close()
        raise


async def start(kube: Kube, own: Settings, memo: kopf.Memo) -> None:
    """Build the one Context on a connected client, prime its stores and start the
    aggregated API; memo.context is set once this returns."""
    # Which replica wrote what is in the API server's audit log (userAgent).
    kube.api.user_agent = f"kubenova-operator/{__version__} ({own.pod_name})"
    # The queues' work functions close over the Context that holds the queues (it is
    # assigned below, before any pass can run: a pass runs only once submitted).
    context: Context

    # A standby's passes do nothing: the leader's do it, and once this replica leads,
    # its scheduler gives every object a pass (controllers/scheduler.py).
    async def tenant_pass(name: str, triggers: frozenset[str]) -> float | None:
        # An uninstall's let-go runs on every replica (it only removes finalizers and
        # deletes token bindings: idempotent): the Lease may go with the namespace.
        if not context.leading.is_set() and not context.uninstalling:
            return None
        return await reconcile_tenant(context, name, triggers)

    async def velasync_pass(key: str, triggers: frozenset[str]) -> None:
        if context.leading.is_set():
            await reconcile_velasync(context, key, triggers)

    async def capsulesync_pass(key: str, triggers: frozenset[str]) -> float | None:
        if not context.leading.is_set():
            return None
        return await reconcile_capsulesync(context, key, triggers)

    context = Context(
        kube=kube,
        settings=own,
        queue=TenantQueue(tenant_pass),
        vela_queue=TenantQueue(velasync_pass, what="VelaSync"),
        capsule_queue=TenantQueue(capsulesync_pass, what="CapsuleSync"),
        kubevela=await kube.has_kind(KUBEVELA.api_version, KUBEVELA.kind),
    )
    context.capsule.installed = await kube.has_kind(CAPSULE.api_version, CAPSULE.kind)
    build_level_queues(context)
    # Shared with the leader election (run_with_leader_election); without it, set.
    leading = getattr(memo, "leading", None)
    if isinstance(leading, asyncio.Event):
        context.leading = leading
    else:
        context.leading.set()
    await prime_stores(context)
    if own.shim_enabled:
        await start_shim(context)
    memo.context = context
    # Ready = able to serve: the stores are primed and the aggregated API is up (or
    # disabled). Leading or not: every replica serves the API from its own stores.
    Serving.set(context.shim is not None or not own.shim_enabled)
    logger.info(
        "kubenova-operator %s started against %s (%s)",
        __version__,
        kube.host,
        "leader" if context.leading.is_set() else "standby until it holds the Lease",
    )


async def start_shim(context: Context) -> None:
    """Serve the aggregated API and register it, on every replica: each answers from
    its own watch-fed stores, so the Service routes to all ready replicas and the API
    group stays available across a failover or a rolling update."""
    shim = Shim(context.kube, context.settings, mint=functools.partial(mint, context))
    try:
        await shim.start()
        await shim.register()
    except Exception:
        logger.exception("the aggregated API could not start; the controllers run without it")
        await shim.stop()
        return
    context.shim = shim


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if getattr(memo, "context", None) is None:
        return  # stopped before a startup succeeded: its tries closed their clients
    context = context_of(memo)
    context.scheduler.stop()
    try:
        await asyncio.wait_for(let_go_at_shutdown(context), timeout=UNINSTALL_AT_SHUTDOWN)
    except Exception:  # (a shutdown must not hang on it: the docs say how to finish by hand)
        logger.exception("could not finish the uninstall's let-go at shutdown")
    if context.shim is not None:
        if context.settings.shim_unregister_on_exit:
            await context.kube.delete("apiregistration.k8s.io/v1", "APIService", APISERVICE_NAME)
        await context.shim.stop()
    await context.kube.close()
    del memo.context


async def run_operator(stop: asyncio.Event, leading: asyncio.Event) -> None:
    """kopf: the watches, the stores, the aggregated API, on every replica; passes
    only while `leading` is set."""
    try:
        await kopf.operator(clusterwide=True, stop_flag=stop, memo=kopf.Memo(leading=leading))
    finally:
        Leadership.set(False)
        Serving.set(False)


async def run_with_leader_election(settings: Settings, stop: asyncio.Event) -> None:
    """Run kopf at once (a warm standby: its watches fill its stores and it serves the
    aggregated API), and let its passes run only while it holds the Lease.

    A leader that cannot renew the Lease within its renew deadline (10 s, shorter than
    the 15 s Lease, so it stops before anyone else can start) goes back to standing by
    and competes again: an API server or etcd outage makes every replica lose the
    Lease, and exiting then (controller-runtime's way) would only add restarts and a
    cold start to the outage."""
    leading = asyncio.Event()
    async with await api_client() as api:
        # Which replica took or renewed the Lease is in the API server's audit log.
        api.user_agent = f"kubenova-operator/{__version__} ({settings.pod_name}) leader-election"
        lock = LeaseLock(settings.lease_name, settings.namespace, settings.pod_name, api)

        async def lead() -> None:
            logger.info("acquired leader lease %s/%s", settings.namespace, settings.lease_name)
            Leadership.set(True)
            leading.set()

        async def stopped() -> None:
            leading.clear()
            Leadership.set(False)
            logger.error("lost the leader lease; standing by until it is free again")

        async def elect() -> None:
            while True:
                election = leaderelection.LeaderElection(
                    electionconfig.Config(
                        lock,
                        lease_duration=settings.lease_seconds,
                        renew_deadline=settings.lease_renew_seconds,
                        retry_period=settings.lease_retry_seconds,
                        onstarted_leading=lead,
                        onstopped_leading=stopped,
                    )
                )
                try:
                    await election.run()
                except Exception as exc:  # the API server unreachable, say: try again
                    logger.warning("leader election: %s", exc)
                    leading.clear()
                    Leadership.set(False)
                await asyncio.sleep(settings.lease_retry_seconds)

        operator = asyncio.create_task(run_operator(stop, leading))
        election = asyncio.create_task(elect())
        await asyncio.wait({operator, election}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await asyncio.wait({operator}, timeout=30)
        was_leading = leading.is_set()
        election.cancel()
        await asyncio.gather(election, return_exceptions=True)
        if was_leading:
            await release_lease(api, settings)


async def release_lease(api: client.ApiClient, settings: Settings) -> None:
    """Give the Lease up on a clean shutdown (a rolling update, a drain): a standby
    takes over at its next try (lease_retry_seconds) instead of waiting out the Lease
    duration, as client-go's ReleaseOnCancel does. Only if this replica still holds it."""
    leases = client.CoordinationV1Api(api)
    try:
        lease = await leases.read_namespaced_lease(settings.lease_name, settings.namespace)
        if lease.spec.holder_identity != settings.pod_name:
            return
        lease.spec.holder_identity = None  # type: ignore[assignment]  # (the model says str)
        await leases.replace_namespaced_lease(settings.lease_name, settings.namespace, lease)
        logger.info("released leader lease %s/%s", settings.namespace, settings.lease_name)
    except Exception as exc:  # (gone, or the API server unreachable: it expires anyway)
        logger.warning("could not release the leader lease: %s", exc)


async def amain() -> None:
    settings = get_settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serve_metrics(settings.metrics_port, settings.bind_address)
    health = await start_health_server(settings.bind_address, settings.health_port)
    try:
        if settings.leader_election:
            await run_with_leader_election(settings, stop)
        else:
            leading = asyncio.Event()
            leading.set()
            Leadership.set(True)
            await run_operator(stop, leading)
    finally:
        await health.cleanup()


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    configure_tracing()
    asyncio.run(amain())


if __name__ == "__main__":
    main()
