"""No kopf timers or change handlers (so kopf puts no finalizer on anything), the
one scheduler's deadlines, and when a watch event asks for a pass."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf
from hypothesis import given
from hypothesis import strategies as st

import kubenova_operator.__main__  # noqa: F401 - registers every handler
from kubenova_operator.config import get_settings
from kubenova_operator.controllers import finalizers
from kubenova_operator.controllers.context import Context
from kubenova_operator.controllers.queue import TenantQueue
from kubenova_operator.controllers.scheduler import (
    EVERY_KEY,
    RESYNC_SLOTS,
    TRIM_HEAP,
    Scheduler,
    Slice,
)
from kubenova_operator.controllers.wiring import LEVEL_TRIGGERED, wants_pass


def test_kopf_only_watches() -> None:
    """kopf adds its finalizer to objects that have timers, daemons or on.delete
    handlers, and annotations for on.create/update/resume: there are none."""
    registry = kopf.get_default_registry()
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    assert registry._watching.get_all_handlers()
    assert "kubeconfigrequest" in {level.controller for level in LEVEL_TRIGGERED}


def _body(uid: str = "u1", generation: int = 1, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "generation": generation, **meta}}


def test_a_pass_is_wanted_for_new_objects_and_spec_changes_only() -> None:
    assert wants_pass(None, _body())
    assert wants_pass(_body(generation=1), _body(generation=2))
    assert wants_pass(_body(uid="u1"), _body(uid="u2"))  # re-created under its name
    assert not wants_pass(_body(), _body())  # a status-only change (our own write)
    assert not wants_pass(None, _body(deletionTimestamp="2026-01-01T00:00:00Z"))


async def test_deadlines_replace_each_other_and_cancel() -> None:
    scheduler = Scheduler()
    fired: list[str] = []
    scheduler.at("stuck-check", "ns/a", 10, lambda: fired.append("late"))
    scheduler.at("stuck-check", "ns/a", 0.01, lambda: fired.append("a"))
    scheduler.at("stuck-check", "ns/b", 0.01, lambda: fired.append("b"))
    scheduler.cancel("stuck-check", "ns/b")
    assert scheduler.pending() == [("stuck-check", "ns/a")]
    await asyncio.sleep(0.05)
    assert fired == ["a"] and scheduler.pending() == []
    scheduler.stop()


async def _idle(key: str, triggers: frozenset[str]) -> None:
    return None


class _Kube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def merge_patch(self, *args: Any) -> dict[str, Any]:
        self.patches.append(args[-1])
        return {}


async def test_kopfs_old_finalizer_and_diffbase_are_removed_once() -> None:
    kube = _Kube()
    context = Context(
        kube=cast(Any, kube),
        settings=get_settings(),
        queue=TenantQueue(_idle),
        vela_queue=TenantQueue(_idle),
        capsule_queue=TenantQueue(_idle),
    )
    body: dict[str, Any] = {
        "apiVersion": "kubenova.io/v1alpha1",
        "kind": "CapsuleSync",
        "metadata": {
            "name": "t",
            "resourceVersion": "7",
            "finalizers": ["kubenova.io/finalizer", "other"],
            "annotations": {finalizers.KOPF_DIFFBASE: "{}", "keep": "x"},
        },
    }
    # A standby writes nothing; the leader removes them.
    assert not await finalizers.drop_kopf_leftovers(context, body)
    assert kube.patches == []
    context.leading.set()
    assert await finalizers.drop_kopf_leftovers(context, body)
    assert kube.patches == [
        {
            "metadata": {
                "resourceVersion": "7",
                "finalizers": ["other"],
                "annotations": {finalizers.KOPF_DIFFBASE: None},
            }
        }
    ]
    clean = {**body, "metadata": {"name": "t", "resourceVersion": "8", "finalizers": ["other"]}}
    assert not await finalizers.drop_kopf_leftovers(context, clean)
    assert len(kube.patches) == 1


@given(st.lists(st.text(min_size=1, max_size=80), max_size=200))
def test_a_resync_period_covers_every_key_once(keys: list[str]) -> None:
    """The resync ticks of one period, together, pass over every key exactly once."""
    slices = [Slice(i, RESYNC_SLOTS) for i in range(RESYNC_SLOTS)]
    for key in keys:
        assert sum(key in s for s in slices) == 1
        assert key in EVERY_KEY


def test_a_resync_tick_takes_a_fraction_of_the_fleet() -> None:
    """500 tenants: no tick submits more than a few times its even share (41.7)."""
    names = [f"team-{i}" for i in range(500)]
    sizes = [sum(n in Slice(i, RESYNC_SLOTS) for n in names) for i in range(RESYNC_SLOTS)]
    assert sum(sizes) == 500 and max(sizes) < 2 * 500 / RESYNC_SLOTS, sizes


def test_the_heap_trim_runs_here() -> None:
    """glibc's malloc_trim once a resync period (RSS back from a burst's peak): on this
    glibc machine it is the real call, which answers 0 or 1."""
    assert TRIM_HEAP() in (0, 1)
