"""The two ways Kubenova's kinds are wired to kopf, written once.

kopf is only the watch machinery here: every handler is an `on.event` handler, so kopf
writes nothing on the objects (no progress or last-handled annotations, no finalizer
of its own). Passes run in Kubenova's queues (controllers/queue.py: coalescing and the
one retry policy) and time-driven work in its scheduler (controllers/scheduler.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import kopf

from ..kube.store import created_before, list_started
from ..observability.reconcile import reconciler
from .children import RELISTS, RESYNCS, observe_child
from .context import Context, context_of
from .finalizers import drop_kopf_leftovers
from .queue import TenantQueue
from .scheduler import Slice

logger = logging.getLogger(__name__)
Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Level:
    resource: str
    controller: str
    handler: Handler
    resync: bool


class LevelRegistry:
    """Which controllers are level-triggered (filled at import, like kopf's registry)."""

    def __init__(self) -> None:
        self._levels: dict[str, Level] = {}

    def add(self, level: Level) -> None:
        self._levels[level.controller] = level

    def __iter__(self) -> Iterator[Level]:
        return iter(list(self._levels.values()))

    def get(self, controller: str) -> Level:
        return self._levels[controller]


LEVEL_TRIGGERED = LevelRegistry()


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's record of the last spec handled, for on.create/on.update handlers'
    diffs: Kubenova has none of those. kopf still builds every object's "essence" (a
    deep copy of the body) on every watch event unless its storage says there is
    nothing to keep: with the default storages, that and the progress storage's clean-up
    below were a tenth of the operator's CPU while it converged (docs/benchmarks.md).
    Nothing is written on the objects either way (on.event handlers store no state)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class NoProgress(kopf.ProgressStorage):
    """kopf's per-handler progress (retries, successes) of on.create/on.update
    handlers: Kubenova's passes keep their own (controllers/queue.py)."""

    def fetch(self, *, key: Any, body: kopf.Body) -> kopf.ProgressRecord | None:
        return None

    def store(
        self, *, key: Any, record: kopf.ProgressRecord, body: kopf.Body, patch: kopf.Patch
    ) -> None:
        return None

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        return None

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return essence


def configure_kopf_storage(settings: kopf.OperatorSettings) -> None:
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.progress_storage = NoProgress()


def object_key(body: dict[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"{meta.get('namespace') or ''}/{meta.get('name', '')}"


def wants_pass(previous: dict[str, Any] | None, current: dict[str, Any]) -> bool:
    """Whether a watch event asks for a pass: the object is new to the operator (or
    re-created under its name) or its spec moved (generation). A status-only change,
    most often the pass's own write, asks for nothing; an object being deleted needs
    no pass (what it made is garbage-collected through ownerReferences)."""
    meta = current.get("metadata", {})
    if meta.get("deletionTimestamp"):
        return False
    if previous is None:
        return True
    before = previous.get("metadata", {})
    return bool(
        before.get("uid") != meta.get("uid") or before.get("generation") != meta.get("generation")
    )


def level_triggered(
    resource: str, controller: str, *, resync: bool = False
) -> Callable[[Handler], Handler]:
    """Run the handler when an object of `resource` is new to the operator or its spec
    changed, and (with `resync`) every KUBENOVA_RESYNC_SECONDS from the store. It
    reconciles from the current state whatever the cause, so a missed event costs
    nothing but a delay. The handler may return seconds until its object needs another
    look (e.g. a token's renewal point); its queue schedules that pass, and retries
    one that raised, with backoff.

    Called with `body`, `memo`, `namespace`, `name` and `triggers` keyword arguments.
    """

    def register(fn: Handler) -> Handler:
        handler = reconciler(controller)(fn)
        LEVEL_TRIGGERED.add(Level(resource, controller, handler, resync))

        async def level_event(
            event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
        ) -> None:
            await observe_level(context_of(memo), controller, event, dict(body))

        kopf.on.event(resource, id=f"{controller}-pass")(level_event)
        return handler

    return register


async def observe_level(
    context: Context, controller: str, event: kopf.RawEvent, body: dict[str, Any]
) -> None:
    key = object_key(body)
    seen = context.watched.setdefault(controller, {})
    queue = context.passes[controller]
    if event.get("type") == "DELETED":
        seen.pop(key, None)
        queue.forget(key)
        return
    if await drop_kopf_leftovers(context, body):
        return  # the patch's own event follows, with the object as it is now
    previous = seen.get(key)
    seen[key] = body
    if wants_pass(previous, body):
        queue.submit(key, "spec")


def build_level_queues(context: Context) -> None:
    """One queue per level-triggered controller, its work bound to the Context."""
    for level in LEVEL_TRIGGERED:
        context.passes[level.controller] = TenantQueue(
            _worker(context, level), what=level.controller
        )


def _worker(context: Context, level: Level) -> Callable[[str, frozenset[str]], Awaitable[Any]]:
    async def work(key: str, triggers: frozenset[str]) -> float | None:
        body = context.watched.get(level.controller, {}).get(key)
        if not context.leading.is_set():
            return None  # a standby: the leader's pass does it (and all, once this leads)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        if await drop_kopf_leftovers(context, body):
            return None  # (a replica that just took over: what the event path missed)
        namespace, name = key.split("/", 1)
        memo = kopf.Memo()
        memo.context = context
        result = await level.handler(
            body=body, memo=memo, namespace=namespace or None, name=name, triggers=triggers
        )
        if isinstance(result, int | float) and not isinstance(result, bool):
            return float(result)
        return None

    return work


def resync_level_triggered(context: Context, keys: Slice) -> None:
    for level in LEVEL_TRIGGERED:
        if not level.resync:
            continue
        queue = context.passes.get(level.controller)
        for key in sorted(context.watched.get(level.controller, {})):
            if queue is not None and key in keys:
                queue.submit(key, "resync")


async def relist_level_triggered(context: Context) -> None:
    """Forget objects a fresh LIST no longer has (deleted while no watch ran: kopf's
    re-listing after a 410 reports none of them)."""
    for level in LEVEL_TRIGGERED:
        seen = context.watched.get(level.controller, {})
        if not seen:
            continue
        sample = next(iter(seen.values()))
        started = list_started()
        listed = await context.kube.list(sample["apiVersion"], sample["kind"])
        keys = {object_key(o) for o in listed}
        for key, body in list(seen.items()):
            if key not in keys and created_before(body, started):
                logger.info("%s %s was deleted unseen; forgetting it", level.controller, key)
                seen.pop(key, None)
                context.passes[level.controller].forget(key)


RESYNCS.append(resync_level_triggered)
RELISTS.append(relist_level_triggered)


def watched_as_child(resource: str, kind: str) -> None:
    """Objects of `resource` that a Tenant's pass builds: a change or deletion has their
    tenant re-checked (which heals them)."""

    async def child_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        await observe_child(context_of(memo), event, {**body, "kind": kind})

    kopf.on.event(resource, id=f"observe-{kind}")(child_event)
