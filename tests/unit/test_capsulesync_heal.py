"""The CapsuleSync's heal: what Capsule's admission stored other than Kubenova wrote is
written again, not reported as a hand edit (the false `spec.owners changed by hand`
on a brand-new tenant); a real hand edit after a faithful write is."""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

from kubenova_operator.api.tenant import TenantSpec
from kubenova_operator.config import get_settings
from kubenova_operator.controllers import capsulesync, events
from kubenova_operator.controllers.context import Context
from kubenova_operator.controllers.queue import TenantQueue
from kubenova_operator.resources.capsule import capsule_tenant

CAPSULE_DEFAULT_ROLES = ["admin", "capsule-namespace-deleter"]


class FakeKube:
    """apply() answers with what the API server stored: `mutate` models Capsule's tenant
    mutating webhook on create (the empty clusterRoles dropped, then defaulted)."""

    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []
        self.mutate = True

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(obj)
        stored = copy.deepcopy(obj)
        if self.mutate:
            for owner in stored["spec"]["owners"]:
                owner["clusterRoles"] = list(CAPSULE_DEFAULT_ROLES)
        stored["metadata"]["resourceVersion"] = str(len(self.applied))
        return stored


def _context(kube: FakeKube) -> Context:
    async def work(tenant: str, triggers: frozenset[str]) -> None:
        return None

    return Context(
        kube=cast(Any, kube),
        settings=get_settings(),
        queue=TenantQueue(work),
        vela_queue=TenantQueue(work, what="VelaSync"),
        capsule_queue=TenantQueue(work, what="CapsuleSync"),
    )


SYNC = {
    "apiVersion": "kubenova.io/v1alpha1",
    "kind": "CapsuleSync",
    "metadata": {"name": "beta", "uid": "s1"},
}


async def test_stored_other_than_written_is_written_again_without_a_drift_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[str] = []
    monkeypatch.setattr(events, "warning", lambda body, reason, message: reported.append(reason))
    kube = FakeKube()
    context = _context(kube)
    spec = TenantSpec.model_validate(
        {"displayName": "Beta", "owners": [{"kind": "User", "name": "bob"}]}
    )
    desired = capsule_tenant("beta", "t1", spec)

    # A brand-new tenant: created, and Capsule's admission gave the owners its roles.
    live, drifted = await capsulesync._heal(context, dict(SYNC), "beta", desired)
    assert not drifted and live["spec"]["owners"][0]["clusterRoles"] == CAPSULE_DEFAULT_ROLES
    assert "beta" not in context.capsule.applied  # not what was wanted: not remembered

    # The next pass (the creation's watch event; or the retry after a 409 on the
    # CapsuleConfiguration) writes it again: not a hand edit.
    kube.mutate = False
    live, drifted = await capsulesync._heal(context, dict(SYNC), "beta", desired)
    assert not drifted and reported == []
    assert live["spec"]["owners"][0]["clusterRoles"] == []
    assert context.capsule.applied["beta"] == desired

    # Nothing to do while it stays as written.
    assert await capsulesync._heal(context, dict(SYNC), "beta", desired) == (live, False)
    assert len(kube.applied) == 2

    # A hand edit after that is drift, reported once and healed.
    edited = copy.deepcopy(live)
    edited["spec"]["owners"].append({"kind": "User", "name": "mallory", "clusterRoles": []})
    context.capsule.tenants["beta"] = edited
    _, drifted = await capsulesync._heal(context, dict(SYNC), "beta", desired)
    assert drifted and reported == ["Drifted"]
    assert len(kube.applied) == 3


def test_the_capsule_tenant_carries_the_label_capsule_would_add() -> None:
    # Capsule's tenant mutating webhook re-encodes a Tenant without it (dropping
    # `clusterRoles: []`, which the CRD then defaults): with it, it leaves it alone.
    spec = TenantSpec.model_validate({"displayName": "Beta"})
    labels = capsule_tenant("beta", "t1", spec)["metadata"]["labels"]
    assert labels["kubernetes.io/metadata.name"] == "beta"
