"""The Tenant's Drifted condition (controllers/tenant.py _drift_condition): whatever
came before, it is computed at the tenant's generation, and a pass with nothing new
to say says the same as the last one (else every resync wrote the status again)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubenova_operator.api.tenant import Tenant
from kubenova_operator.controllers.conditions import condition
from kubenova_operator.controllers.tenant import _drift_condition

POLICY = st.sampled_from(["Heal", "Report"])
DRIFTED = st.lists(st.sampled_from(["RoleBinding a/b", "ResourceQuota c/d"]), max_size=2)
PREVIOUS = st.one_of(
    st.none(),
    st.builds(
        condition,
        st.just("Drifted"),
        st.sampled_from([True, False]),
        st.sampled_from(["InSync", "DriftHealed", "DriftDetected"]),
        st.text(max_size=20),
        st.one_of(st.none(), st.integers(1, 5)),
    ),
)


def _tenant(policy: str, generation: int) -> Tenant:
    return Tenant.model_validate(
        {
            "apiVersion": "kubenova.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": "t", "generation": generation},
            "spec": {"driftPolicy": policy},
        }
    )


@given(POLICY, DRIFTED, PREVIOUS, st.integers(1, 9))
def test_computed_at_the_generation_and_stable(
    policy: str, drifted: list[str], previous: dict[str, Any] | None, generation: int
) -> None:
    tenant = _tenant(policy, generation)
    old = {"conditions": [previous] if previous else []}
    first = _drift_condition(tenant, old, drifted, generation)
    assert first["observedGeneration"] == generation
    # The next pass finds nothing drifted: the same condition, unless it had
    # something new to say (a heal to report, or a detected drift now gone).
    again = _drift_condition(tenant, {"conditions": [first]}, [], generation)
    assert again["observedGeneration"] == generation
    if not drifted:
        assert again == first
    third = _drift_condition(tenant, {"conditions": [again]}, [], generation)
    assert third == again
