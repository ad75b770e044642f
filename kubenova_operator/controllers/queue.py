"""Serialises and coalesces the reconciles of each tenant.

Everything in a tenant (its own children, its projects' namespaces, the budget that
links them) is reconciled as one unit, under one lock, so two events never race to
write the same objects. Requests that arrive while a reconcile runs are merged into the
next one: a burst of child events costs one extra pass, not one pass each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


@dataclass
class _State:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: bool = False
    triggers: set[str] = field(default_factory=set)  # what asked for the next pass
    failures: int = 0
    retry: asyncio.TimerHandle | None = None


class TenantQueue:
    """Keyed by tenant name; the VelaSync controller uses one keyed by VelaSync."""

    def __init__(
        self, work: Callable[[str, frozenset[str]], Awaitable[None]], what: str = "tenant"
    ) -> None:
        self._work = work
        self._what = what
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
            state.pending = False
            # The pass learns every reason it covers: one that includes a spec change
            # must not report the resulting differences as drift.
            triggers = frozenset(state.triggers)
            state.triggers.clear()
            if state.retry is not None:
                state.retry.cancel()
                state.retry = None
            try:
                await self._work(tenant, triggers)
            except Exception:
                state.failures += 1
                state.triggers |= triggers  # the retry covers them again
                raise
            state.failures = 0

    async def nudge(self, tenant: str, trigger: str) -> None:
        """Reconcile from a watch event: errors are logged and retried with backoff
        (an event handler has no retry of its own)."""
        try:
            await self.run(tenant, trigger)
        except Exception as exc:
            state = self._states[tenant]
            delay = min(MAX_BACKOFF, 0.5 * 2 ** min(state.failures, 8))
            logger.warning(
                "reconcile of %s %s failed (%s); retrying in %.1fs", self._what, tenant, exc, delay
            )
            if state.retry is None:
                loop = asyncio.get_running_loop()
                state.retry = loop.call_later(delay, self._spawn, tenant)

    def submit(self, tenant: str, trigger: str) -> None:
        """Ask for a pass without waiting for it. Watch-event handlers use this: they
        return at once, so a burst of events (every child listed when a watch starts)
        never queues behind passes, and a deletion is seen when it happens."""
        task = asyncio.get_running_loop().create_task(self.nudge(tenant, trigger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn(self, tenant: str) -> None:
        self._states[tenant].retry = None
        task = asyncio.get_running_loop().create_task(self.nudge(tenant, "retry"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, tenant: str) -> None:
        state = self._states.pop(tenant, None)
        if state and state.retry:
            state.retry.cancel()
