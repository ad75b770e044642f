"""One reconcile outcome, and how it becomes status.

Every pass of every kind ends in an `Outcome`: Ready, Reconciling (work in progress:
look again later) or Stalled (the spec cannot be satisfied as written: a human has to
change it, or the world has to change, and a watch event brings the next pass). The
outcome is rendered into the kstatus conditions that Flux, Argo CD and `kubectl wait`
read:

| outcome     | Ready              | Reconciling        | Stalled            |
|-------------|--------------------|--------------------|--------------------|
| Ready       | True, reason       | (absent)           | (absent)           |
| Reconciling | False, same reason | True, reason       | (absent)           |
| Stalled     | False, same reason | (absent)           | True, reason       |

kstatus reads Reconciling=True as InProgress, Stalled=True as Failed and an object
with neither (and status.observedGeneration == metadata.generation) as Current.

Retries are not decided here: a transient failure (API 5xx, conflicts, timeouts) is an
exception, and the queue (controllers/queue.py) retries it with backoff; a Stalled
outcome is not retried; a Reconciling one may ask for a look after `requeue_after`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from ..api.common import Condition, StatusBase
from .conditions import condition, merge_conditions


class State(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


@dataclass(frozen=True)
class Outcome:
    state: State
    reason: str
    message: str = ""
    requeue_after: float | None = None

    @classmethod
    def ready(cls, message: str = "", reason: str = "Reconciled") -> Outcome:
        return cls(State.READY, reason, message)

    @classmethod
    def reconciling(cls, reason: str, message: str, requeue_after: float | None = None) -> Outcome:
        return cls(State.RECONCILING, reason, message, requeue_after)

    @classmethod
    def stalled(cls, reason: str, message: str) -> Outcome:
        return cls(State.STALLED, reason, message)

    @property
    def is_ready(self) -> bool:
        return self.state is State.READY

    def conditions(self, generation: int | None) -> list[dict[str, Any]]:
        """The kstatus conditions this outcome stands for (see the table above)."""
        message = self.message[:2000]
        out = [condition("Ready", self.is_ready, self.reason, message, generation)]
        if self.state is State.RECONCILING:
            out.append(condition("Reconciling", True, self.reason, message, generation))
        elif self.state is State.STALLED:
            out.append(condition("Stalled", True, self.reason, message, generation))
        return out


KSTATUS_TYPES = ("Ready", "Reconciling", "Stalled")


def render_conditions(
    previous: list[dict[str, Any]] | None,
    outcome: Outcome,
    generation: int | None,
    extra: Iterable[dict[str, Any]] = (),
) -> list[Condition]:
    """The complete condition list: the outcome's kstatus conditions (a Reconciling or
    Stalled left from an earlier outcome is dropped), then `extra`, then whatever else
    was there (conditions other writers own), each keeping its lastTransitionTime while
    its status holds."""
    wanted = [*outcome.conditions(generation), *extra]
    kept = [
        c
        for c in previous or []
        if c.get("type") not in KSTATUS_TYPES or c.get("type") in {w["type"] for w in wanted}
    ]
    return [Condition.model_validate(c) for c in merge_conditions(kept, wanted)]


def _empty(value: Any) -> bool:
    return value is None or value in ([], {})


def status_patch(status: StatusBase, exclude: set[str] | None = None) -> dict[str, Any]:
    """The status as a merge patch: every field the model owns, with null for those it
    clears (fields in `exclude`, by their Python name, belong to another writer).
    Nested unset fields are left out, as the API server would prune them."""
    patch = status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=exclude)
    for name, info in type(status).model_fields.items():
        wire = info.alias or name
        if name not in (exclude or set()) and wire not in patch:
            patch[wire] = None
    return patch


def unchanged(old: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> bool:
    """Whether applying `patch` to `old` would change anything a reader can see
    (absent, null and empty are the same)."""
    old = old or {}
    for key, value in patch.items():
        have = old.get(key)
        if _empty(value) and _empty(have):
            continue
        if have != value:
            return False
    return True


# Status codes that mean the request itself is wrong or not allowed: sending it again
# cannot succeed until the spec (or the operator's permissions) change.
_TERMINAL_STATUS = frozenset({400, 403, 404, 405, 413, 415, 422})


def is_terminal(exc: BaseException) -> bool:
    """Whether a failed write is the spec's fault (Stalled) rather than the world's
    (retried with backoff)."""
    return isinstance(exc, ApiException) and exc.status in _TERMINAL_STATUS
