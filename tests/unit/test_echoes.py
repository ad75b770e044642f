"""A watch event of what the operator itself just wrote (its answer is already in the
store) does not ask for another pass; news and a tenant's first event since start-up do.
Each echo used to cost a full pass of its tenant (docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from kubenova_operator.config import get_settings
from kubenova_operator.controllers.children import observe_child
from kubenova_operator.controllers.context import Context
from kubenova_operator.controllers.queue import TenantQueue
from kubenova_operator.controllers.tenant import tenant_key


def _binding(rv: str, uid: str = "u1") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": "kubenova:readonly",
            "namespace": "acme-apps",
            "uid": uid,
            "resourceVersion": rv,
            "labels": {"app.kubernetes.io/managed-by": "kubenova", "kubenova.io/tenant": "acme"},
        },
    }


async def test_echoes_of_own_writes_ask_for_no_pass() -> None:
    passes: list[frozenset[str]] = []

    async def work(tenant: str, triggers: frozenset[str]) -> None:
        passes.append(triggers)

    context = Context(
        kube=cast(Any, None),
        settings=get_settings(),
        queue=TenantQueue(work),
        vela_queue=TenantQueue(work, what="VelaSync"),
        capsule_queue=TenantQueue(work, what="CapsuleSync"),
    )
    context.stores.parents.upsert(
        {"kind": "Tenant", "metadata": {"name": "acme", "uid": "t", "resourceVersion": "1"}}
    )
    assert context.stores.parents.get(tenant_key("acme")) is not None

    async def event(kind: str, body: dict[str, Any]) -> int:
        before = len(passes)
        await observe_child(context, cast(Any, {"type": kind, "object": body}), body)
        await asyncio.sleep(0.01)  # the submitted pass, if any, runs
        return len(passes) - before

    context.stores.children.upsert(_binding("10"))  # a pass wrote it and kept the answer
    # The first event of a tenant since start-up asks for a pass even when the store
    # has it (primed by a LIST at start-up: something may have changed while down).
    assert await event("MODIFIED", _binding("10")) == 1
    assert await event("MODIFIED", _binding("10")) == 0  # the echo of the write
    assert await event("MODIFIED", _binding("9")) == 0  # a late one
    assert await event("MODIFIED", _binding("11")) == 1  # somebody edited it
    assert await event("DELETED", _binding("12")) == 1  # somebody deleted it
    assert await event("ADDED", _binding("13", uid="u2")) == 1
