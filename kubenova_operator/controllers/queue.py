"""Serialises and coalesces the reconciles of each tenant.

Everything in a tenant (its own children, its projects' namespaces, the budget that
links them) is reconciled as one unit, under one lock, so two events never race to
write the same objects. Requests that arrive while a reconcile runs are merged into the
next one: a burst of child events costs one extra pass, not one pass each.

This is the one place that decides when a pass runs again: a pass that raises (a
transient API failure) is retried with exponential backoff; a pass that returns a delay
(work in progress, e.g. a namespace still terminating) is looked at again after it; a
pass that returns None waits for the next event. A Stalled object therefore costs no
API traffic until its spec, or something it depends on, changes.

At most `concurrency` passes of a queue run at once (controller-runtime's
MaxConcurrentReconciles): a burst of 500 new tenants is built a few tenants at a time,
each to the end, instead of all 500 at once sharing the connection pool, each holding
its desired objects and its writes in flight (that is memory, and CPU spent switching
between them; docs/benchmarks.md). And at most PER_NAMESPACE of them for the keys of
one namespace (a KubeConfigRequest's key is "namespace/name"): a tenant that creates a
thousand KubeConfigRequests has their passes wait for its own namespace's slots, so
another tenant's new request waits behind two of them at most, not behind the
thousand (tests/e2e/test_credentials.py floods 300: 0.23 s, and 6.8 s without the
namespace's slots). A tenant's passes (keyed by tenant name) are one at a time
already; a revocation is its own tenant's pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
# Passes of one queue at once. Each pass writes its objects concurrently (a wave at a
# time), so a few keep the API server's connections busy: 8 converged fastest (4: 21.7 s,
# 8: 17.6 s, 16: 19.2 s, unbounded: 18.9 s for N = 100; docs/benchmarks.md).
CONCURRENCY = 8
# Of those, passes of the keys of one namespace at once.
PER_NAMESPACE = 2


def namespace_of(key: str) -> str:
    """The namespace of a "namespace/name" key; a tenant's name is its own."""
    return key.split("/", 1)[0] if "/" in key else key


class _Slots:
    """The queue's slots: CONCURRENCY in all, PER_NAMESPACE for one namespace's keys.
    A pass takes its namespace's slot first, so the passes a namespace has in excess
    wait there, not in the line every namespace shares."""

    def __init__(self, concurrency: int) -> None:
        self._all = asyncio.Semaphore(concurrency)
        self._namespaces: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        namespace = namespace_of(key)
        semaphore, users = self._namespaces.get(namespace) or (
            asyncio.Semaphore(PER_NAMESPACE),
            0,
        )
        self._namespaces[namespace] = (semaphore, users + 1)
        try:
            async with semaphore, self._all:
                yield
        finally:
            semaphore, users = self._namespaces[namespace]
            if users == 1:
                del self._namespaces[namespace]
            else:
                self._namespaces[namespace] = (semaphore, users - 1)


@dataclass
class _State:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: bool = False
    triggers: set[str] = field(default_factory=set)  # what asked for the next pass
    failures: int = 0
    retry: asyncio.TimerHandle | None = None  # a backoff retry or a requested requeue


class TenantQueue:
    """Keyed by tenant name; the VelaSync controller uses one keyed by VelaSync."""

    def __init__(
        self,
        work: Callable[[str, frozenset[str]], Awaitable[float | None]],
        what: str = "tenant",
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._work = work
        self._what = what
        self._slots = _Slots(concurrency)
        self._states: dict[str, _State] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, tenant: str, trigger: str) -> None:
        """Reconcile `tenant` and return when a pass that started after this call has
        finished (or raise its error)."""
        state = self._states.setdefault(tenant, _State())
        state.pending = True
        state.triggers.add(trigger)
        async with state.lock:
            if not state.pending:
                return  # a pass that started after our request covered it
            async with self._slots.slot(tenant):
                # The request is taken once the slot is (only the lock's holder takes
                # one): what arrived while this pass waited for a slot is covered by
                # it, not by one more pass after it.
                await self._pass(tenant, state)

    async def _pass(self, tenant: str, state: _State) -> None:
        state.pending = False
        # The pass learns every reason it covers: one that includes a spec change must
        # not report the resulting differences as drift.
        triggers = frozenset(state.triggers)
        state.triggers.clear()
        if state.retry is not None:
            state.retry.cancel()
            state.retry = None
        try:
            requeue = await self._work(tenant, triggers)
        except Exception:
            state.failures += 1
            state.triggers |= triggers  # the retry covers them again
            raise
        state.failures = 0
        if requeue is not None and tenant in self._states:
            self._later(tenant, requeue, "requeue")

    async def nudge(self, tenant: str, trigger: str) -> None:
        """Reconcile from a watch event: errors are logged and retried with backoff
        (an event handler has no retry of its own)."""
        try:
            await self.run(tenant, trigger)
        except Exception as exc:
            state = self._states.get(tenant) or _State()
            delay = min(MAX_BACKOFF, 0.5 * 2 ** min(state.failures, 8))
            logger.warning(
                "reconcile of %s %s failed (%s); retrying in %.1fs", self._what, tenant, exc, delay
            )
            self._later(tenant, delay, "retry")

    def _later(self, tenant: str, delay: float, trigger: str) -> None:
        state = self._states.get(tenant)
        if state is not None and state.retry is None:
            loop = asyncio.get_running_loop()
            state.retry = loop.call_later(max(delay, 0.0), self._spawn, tenant, trigger)

    def submit(self, tenant: str, trigger: str) -> None:
        """Ask for a pass without waiting for it. Watch-event handlers use this: they
        return at once, so a burst of events (every child listed when a watch starts)
        never queues behind passes, and a deletion is seen when it happens. A key
        whose next pass is already asked for (a request waits for the running pass)
        only adds its reason to that pass: a burst of a tenant's child events costs no
        task per event."""
        state = self._states.get(tenant)
        if state is not None and state.pending:
            state.triggers.add(trigger)
            return
        task = asyncio.get_running_loop().create_task(self.nudge(tenant, trigger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn(self, tenant: str, trigger: str) -> None:
        if tenant not in self._states:
            return
        self._states[tenant].retry = None
        self.submit(tenant, trigger)

    def knows(self, tenant: str) -> bool:
        """Whether a pass of `tenant` was asked for since start-up (and not forgotten)."""
        return tenant in self._states

    def keys(self) -> list[str]:
        """Every key the queue has seen and not forgotten."""
        return sorted(self._states)

    def forget(self, tenant: str) -> None:
        state = self._states.pop(tenant, None)
        if state and state.retry:
            state.retry.cancel()
