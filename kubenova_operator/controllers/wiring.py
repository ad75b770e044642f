"""The two ways Kubenova's kinds are wired to kopf, written once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from ..config import get_settings
from ..observability.reconcile import reconciler
from .children import observe_child
from .context import context_of

Handler = Callable[..., Awaitable[Any]]


def level_triggered(
    resource: str, controller: str, *, resync: bool = False
) -> Callable[[Handler], Handler]:
    """Run the handler on resume, create and update of `resource` (and, with `resync`,
    every KUBENOVA_RESYNC_SECONDS): it reconciles from the current state whatever the
    cause, so a missed event costs nothing but a delay."""

    def register(fn: Handler) -> Handler:
        handler = reconciler(controller)(fn)
        for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
            on(resource)(handler)
        if resync:
            interval = get_settings().resync_seconds
            kopf.timer(resource, interval=interval, initial_delay=interval)(handler)
        return handler

    return register


def watched_as_child(resource: str, kind: str) -> None:
    """Objects of `resource` that a Tenant's pass builds: a change or deletion has their
    tenant re-checked (which heals them)."""

    async def child_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        await observe_child(context_of(memo), event, {**body, "kind": kind})

    kopf.on.event(resource, id=f"observe-{kind}")(child_event)
