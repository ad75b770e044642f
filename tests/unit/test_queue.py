"""The per-key queue: one pass at a time per key, bursts coalesced, and every reason
for a pass handed to the pass that covers it."""

from __future__ import annotations

import asyncio

import pytest

from kubenova_operator.controllers.queue import PER_NAMESPACE, TenantQueue


async def test_requests_during_a_pass_coalesce_into_one_with_all_triggers() -> None:
    passes: list[frozenset[str]] = []
    release = asyncio.Event()

    async def work(key: str, triggers: frozenset[str]) -> None:
        passes.append(triggers)
        if len(passes) == 1:
            await release.wait()

    queue = TenantQueue(work)
    first = asyncio.create_task(queue.run("acme", "resync"))
    await asyncio.sleep(0)  # the first pass is running and waits
    waiting = [asyncio.create_task(queue.run("acme", t)) for t in ("child", "spec", "child")]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiting)
    # Three requests during the first pass cost one more pass, which knows it covers
    # a spec change (so its differences are not reported as drift).
    assert passes == [frozenset({"resync"}), frozenset({"child", "spec"})]


async def test_a_failed_pass_keeps_its_triggers_for_the_retry() -> None:
    passes: list[frozenset[str]] = []

    async def work(key: str, triggers: frozenset[str]) -> None:
        passes.append(triggers)
        if len(passes) == 1:
            raise RuntimeError("API server unavailable")

    queue = TenantQueue(work)
    with pytest.raises(RuntimeError):
        await queue.run("acme", "spec")
    await queue.run("acme", "retry")
    assert passes == [frozenset({"spec"}), frozenset({"spec", "retry"})]


async def test_submit_returns_at_once_and_the_pass_follows() -> None:
    done = asyncio.Event()
    release = asyncio.Event()

    async def work(key: str, triggers: frozenset[str]) -> None:
        await release.wait()
        done.set()

    queue = TenantQueue(work)
    queue.submit("acme", "child")  # a watch-event handler does not wait for the pass
    assert not done.is_set()
    release.set()
    await asyncio.wait_for(done.wait(), timeout=5)


async def test_at_most_the_queues_concurrency_of_passes_run_at_once() -> None:
    running: set[str] = set()
    most = 0
    release = asyncio.Event()

    async def work(key: str, triggers: frozenset[str]) -> None:
        nonlocal most
        running.add(key)
        most = max(most, len(running))
        await release.wait()
        running.discard(key)

    queue = TenantQueue(work, concurrency=3)
    tasks = [asyncio.create_task(queue.run(f"t{i}", "spec")) for i in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(running) == 3
    release.set()
    await asyncio.gather(*tasks)
    assert most == 3 and not running


async def test_what_arrives_while_a_pass_waits_for_a_slot_is_covered_by_it() -> None:
    """A tenant whose pass waits for a slot gathers every later request into that pass:
    no task per request, and no second pass after it."""
    passes: list[tuple[str, frozenset[str]]] = []
    release = asyncio.Event()

    async def work(key: str, triggers: frozenset[str]) -> None:
        passes.append((key, triggers))
        if key == "busy":
            await release.wait()

    queue = TenantQueue(work, concurrency=1)
    busy = asyncio.create_task(queue.run("busy", "spec"))
    await asyncio.sleep(0)  # "busy" holds the one slot
    queue.submit("acme", "spec")
    for _ in range(3):
        await asyncio.sleep(0)  # acme's pass is waiting for the slot
    tasks_before = len(queue._tasks)
    for trigger in ("child", "child", "namespace-freed", "resync"):
        queue.submit("acme", trigger)
    assert len(queue._tasks) == tasks_before  # coalesced, not queued
    release.set()
    await busy
    while queue._tasks:
        await asyncio.gather(*list(queue._tasks))
    assert passes == [
        ("busy", frozenset({"spec"})),
        ("acme", frozenset({"spec", "child", "namespace-freed", "resync"})),
    ]


async def test_a_flood_of_one_namespaces_keys_holds_its_own_slots_only() -> None:
    """A tenant creating a thousand KubeConfigRequests (keys "<its namespace>/<name>")
    whose passes are slow holds PER_NAMESPACE of the queue's slots: another tenant's
    request (an issue, a revocation) runs at once, not behind the flood."""
    stuck = asyncio.Event()
    running: set[str] = set()
    most_hostile = 0

    async def work(key: str, triggers: frozenset[str]) -> None:
        nonlocal most_hostile
        running.add(key)
        most_hostile = max(most_hostile, sum(1 for k in running if k.startswith("a-owner/")))
        if key.startswith("a-owner/"):
            await stuck.wait()
        running.discard(key)

    queue = TenantQueue(work, what="KubeConfigRequest", concurrency=4)
    for i in range(1000):
        queue.submit(f"a-owner/flood-{i}", "spec")
    for _ in range(5):
        await asyncio.sleep(0)
    await asyncio.wait_for(queue.run("b-owner/revoked", "spec"), timeout=1)
    assert most_hostile == PER_NAMESPACE
    stuck.set()
    while queue._tasks:
        await asyncio.gather(*list(queue._tasks))
    assert not running and most_hostile == PER_NAMESPACE


async def test_one_tenant_holds_at_most_one_tenant_slot_whatever_it_asks_for() -> None:
    """A tenant that keeps asking for passes (its children's events, its requests'
    credential passes) while its pass is slow holds one slot: the others' passes run."""
    ran: list[str] = []
    stuck = asyncio.Event()

    async def work(key: str, triggers: frozenset[str]) -> None:
        ran.append(key)
        if key == "hostile":
            await stuck.wait()

    queue = TenantQueue(work, concurrency=2)
    hostile = [asyncio.create_task(queue.run("hostile", "credential")) for _ in range(50)]
    for _ in range(200):
        queue.submit("hostile", "child")
    await asyncio.sleep(0)
    await asyncio.wait_for(queue.run("victim", "credential"), timeout=1)
    assert ran.count("hostile") == 1 and "victim" in ran
    stuck.set()
    await asyncio.gather(*hostile)
