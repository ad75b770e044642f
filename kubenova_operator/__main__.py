"""`python -m kubenova_operator` / `kubenova-operator`: run the operator.

kopf runs cluster-wide with deliberate settings (below), inside a Lease-based leader
election so that a second replica waits instead of double-writing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import sys
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
from .controllers.velasync import reconcile_velasync
from .controllers.wiring import build_level_queues
from .integrations import CAPSULE, KUBEVELA
from .kube.client import Kube, in_cluster, load_configuration, service_account_login
from .kube.kinds import REGISTRY
from .observability.health import Leadership, start_health_server
from .observability.logs import configure_logging
from .observability.metrics import serve_metrics
from .observability.tracing import configure_tracing
from .resources.labels import MANAGED_SELECTOR
from .shim.registration import APISERVICE_NAME
from .shim.server import Shim

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
    # The queues' work functions close over the Context that holds the queues (it is
    # assigned below, before any pass can run: a pass runs only once submitted).
    context: Context

    async def tenant_pass(name: str, triggers: frozenset[str]) -> float | None:
        return await reconcile_tenant(context, name, triggers)

    async def velasync_pass(key: str, triggers: frozenset[str]) -> None:
        await reconcile_velasync(context, key, triggers)

    async def capsulesync_pass(key: str, triggers: frozenset[str]) -> float | None:
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
    memo.context = context
    await prime_stores(context)
    if own.shim_enabled:
        await start_shim(context)
    logger.info("kubenova-operator %s started against %s", __version__, kube.host)


async def start_shim(context: Context) -> None:
    """Serve the aggregated API and register it. Only the leader serves it: standby
    replicas report not-ready on /readyz, so the Service routes to the leader."""
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
    context = context_of(memo)
    context.scheduler.stop()
    if context.shim is not None:
        if context.settings.shim_unregister_on_exit:
            await context.kube.delete("apiregistration.k8s.io/v1", "APIService", APISERVICE_NAME)
        await context.shim.stop()
    await context.kube.close()
    del memo.context


async def run_operator(settings: Settings, stop: asyncio.Event) -> None:
    Leadership.set(True)
    try:
        await kopf.operator(clusterwide=True, stop_flag=stop)
    finally:
        Leadership.set(False)


async def run_with_leader_election(settings: Settings, stop: asyncio.Event) -> None:
    """Run kopf only while holding the Lease; exit when it is lost, as
    controller-runtime does, so the replacement starts clean."""
    async with client.ApiClient(await load_configuration()) as api:
        lock = LeaseLock(settings.lease_name, settings.namespace, settings.pod_name, api)
        lease_lost = asyncio.Event()

        async def lead() -> None:
            logger.info("acquired leader lease %s/%s", settings.namespace, settings.lease_name)
            await run_operator(settings, stop)
            # kopf returns when told to stop (its own signal handlers or our flag).
            stop.set()

        async def stopped() -> None:
            Leadership.set(False)
            lease_lost.set()

        election = leaderelection.LeaderElection(
            electionconfig.Config(
                lock,
                lease_duration=15,
                renew_deadline=10,
                retry_period=2,
                onstarted_leading=lead,
                onstopped_leading=stopped,
            )
        )
        task = asyncio.create_task(election.run())
        waiters = {task, asyncio.create_task(stop.wait()), asyncio.create_task(lease_lost.wait())}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if lease_lost.is_set() and not stop.is_set():
            logger.error("lost the leader lease; exiting so a fresh process takes over")
            stop.set()
            sys.exit(1)
        for waiter in waiters:
            waiter.cancel()


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
            await run_operator(settings, stop)
    finally:
        await health.cleanup()


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    configure_tracing()
    asyncio.run(amain())


if __name__ == "__main__":
    main()
