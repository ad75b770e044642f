"""The operator's one clock: what happens because time passed, not because of an event.

kopf timers run per object and make kopf put its finalizer on every object they watch
(so deleting one hangs while the operator is away). Instead, one Scheduler per
operator (the Context's `scheduler`) reads the in-memory store and asks the queues for
passes:

- every `KUBENOVA_RESYNC_SECONDS`: each Tenant, each VelaSync and each object of the
  level-triggered kinds (controllers/wiring.py: KubeConfigRequests, CapsuleSyncs) gets
  a pass from the store (no API reads; a pass with nothing to do writes nothing),
  spread over the period: every `period / RESYNC_SLOTS` one slice of the keys (by a
  hash of the key), so N tenants cost N/12 passes every 5 s rather than N passes at
  once, which queued every new tenant's first pass behind the whole fleet's;
- every `KUBENOVA_RELIST_SECONDS`: the relists (controllers/children.py `RELISTS`);
- one-shot deadlines keyed by name (`at`): a running KubeVela workflow that will count
  as stuck at a known time. A KubeConfigRequest's rotation deadline is the delay its
  pass returns, which its queue turns into the next pass (controllers/queue.py, the one
  place that decides when a key is looked at again, retries included).

A watch answered 410 Gone (its resourceVersion too old, e.g. after etcd compacted it)
makes kopf list the kind afresh, which reports no deletion that happened meanwhile: the
relists are what forget those, within one relist period.

Nothing here retries: a pass that fails is the queue's to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import Context

logger = logging.getLogger(__name__)

LEADERSHIP_POLL_SECONDS = 0.2


def _malloc_trim() -> Callable[[], object]:
    """glibc's malloc_trim(0), or nothing where there is no glibc.

    A burst (a GitOps sync of hundreds of tenants) leaves the C heap at its high-water
    mark: freed, but not returned to the system, so RSS stays at the peak for good.
    Trimming once a resync period gives it back (measured at N = 100: idle RSS
    298 MB -> 263 MB; MALLOC_ARENA_MAX=2 did nothing). Python's own small-object
    arenas are returned by CPython when they empty; this is the rest."""
    with contextlib.suppress(OSError, AttributeError):
        return functools.partial(ctypes.CDLL("libc.so.6").malloc_trim, 0)
    return lambda: None


TRIM_HEAP = _malloc_trim()
# How many slices a resync period is cut into (each key is resynced once a period).
RESYNC_SLOTS = 12


@dataclass(frozen=True)
class Slice:
    """The keys a resync tick covers: those whose hash falls in slot `index` of `of`."""

    index: int = 0
    of: int = 1

    def __contains__(self, key: str) -> bool:
        return self.of == 1 or zlib.crc32(key.encode()) % self.of == self.index


EVERY_KEY = Slice()

Periodic = Callable[["Context", Slice], None]
Relist = Callable[["Context"], Awaitable[None]]


class Scheduler:
    def __init__(self) -> None:
        self._deadlines: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._task: asyncio.Task[None] | None = None
        self.took_over: float | None = None  # when a standby started leading (loop time)

    # --- one-shot deadlines ---------------------------------------------------------

    def at(self, what: str, key: str, delay: float, fire: Callable[[], None]) -> None:
        """Call `fire` after `delay` seconds, replacing any deadline of (`what`, `key`)."""
        self.cancel(what, key)

        def run() -> None:
            self._deadlines.pop((what, key), None)
            fire()

        loop = asyncio.get_running_loop()
        self._deadlines[(what, key)] = loop.call_later(max(delay, 0.0), run)

    def cancel(self, what: str, key: str) -> None:
        handle = self._deadlines.pop((what, key), None)
        if handle is not None:
            handle.cancel()

    def pending(self) -> list[tuple[str, str]]:
        return sorted(self._deadlines)

    # --- the periodic safety nets -------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(
        self,
        context: Context,
        resyncs: list[Periodic],
        relists: list[Relist],
    ) -> None:
        """Start the periodic loop once (later calls do nothing)."""
        if self._task is None:
            self._task = asyncio.create_task(self._forever(context, resyncs, relists))

    async def _run_relists(self, context: Context, relists: list[Relist]) -> None:
        for run in relists:
            try:
                await run(context)
            except Exception as exc:
                # The next relist tries again; nothing is lost meanwhile (the
                # watches still run, the resync still passes over everything).
                logger.warning("%s failed: %s", getattr(run, "__name__", run), exc)

    async def _forever(
        self, context: Context, resyncs: list[Periodic], relists: list[Relist]
    ) -> None:
        resync, relist = context.settings.resync_seconds, context.settings.relist_seconds
        # The first relist one resync period after start-up (config.py says so).
        last_relist = asyncio.get_running_loop().time() - relist + resync
        loop = asyncio.get_running_loop()
        follower = asyncio.create_task(self._follow_leadership(context, resyncs))
        tick = 0
        try:
            while True:
                await asyncio.sleep(resync / RESYNC_SLOTS)
                if context.leading.is_set():
                    for submit in resyncs:
                        submit(context, Slice(tick % RESYNC_SLOTS, RESYNC_SLOTS))
                tick += 1
                if tick % RESYNC_SLOTS == 0:
                    TRIM_HEAP()
                if loop.time() - last_relist >= relist:
                    last_relist = loop.time()
                    await self._run_relists(context, relists)
        finally:
            follower.cancel()

    async def _follow_leadership(self, context: Context, resyncs: list[Periodic]) -> None:
        """A standby's watches keep its stores current (the aggregated API serves from
        them) and its queues do nothing. Whenever it starts leading, every object gets
        a pass at once: whatever the previous leader left undone is done now."""
        loop = asyncio.get_running_loop()
        was = context.leading.is_set()
        while True:
            await asyncio.sleep(LEADERSHIP_POLL_SECONDS)
            now = context.leading.is_set()
            if now and not was:
                self.took_over = loop.time()
                logger.info("leading: every object gets a pass")
                for submit in resyncs:
                    submit(context, EVERY_KEY)
            was = now

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for handle in self._deadlines.values():
            handle.cancel()
        self._deadlines.clear()
