"""Outcomes become kstatus conditions; statuses are typed and written only on change."""

from __future__ import annotations

from kubernetes_asyncio.client.exceptions import ApiException

from kubenova_operator.api.common import Condition
from kubenova_operator.api.project import ProjectStatus
from kubenova_operator.controllers.outcome import (
    Outcome,
    is_terminal,
    render_conditions,
    status_patch,
    unchanged,
)


def types(conditions: list[Condition]) -> dict[str, tuple[str, str]]:
    out = {}
    for c in conditions:
        dumped = c.model_dump(by_alias=True, mode="json")
        out[dumped["type"]] = (dumped["status"], dumped["reason"])
    return out


def test_each_outcome_maps_to_the_kstatus_conditions() -> None:
    ready = render_conditions(None, Outcome.ready("ok"), 3)
    assert types(ready) == {"Ready": ("True", "Reconciled")}
    busy = render_conditions(None, Outcome.reconciling("NamespaceTerminating", "wait"), 3)
    assert types(busy) == {
        "Ready": ("False", "NamespaceTerminating"),
        "Reconciling": ("True", "NamespaceTerminating"),
    }
    stalled = render_conditions(None, Outcome.stalled("BudgetExceeded", "too big"), 3)
    assert types(stalled) == {
        "Ready": ("False", "BudgetExceeded"),
        "Stalled": ("True", "BudgetExceeded"),
    }


def test_a_later_outcome_drops_the_earlier_kstatus_condition_and_keeps_others() -> None:
    stalled = [
        c.model_dump(by_alias=True, mode="json")
        for c in render_conditions(None, Outcome.stalled("BudgetExceeded", "x"), 1)
    ]
    other = {"type": "ApplicationsHealthy", "status": "True", "reason": "AllHealthy"}
    other["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    now_ready = render_conditions([*stalled, other], Outcome.ready(), 2)
    assert types(now_ready) == {
        "Ready": ("True", "Reconciled"),
        "ApplicationsHealthy": ("True", "AllHealthy"),
    }


def test_transition_time_is_kept_while_the_status_holds() -> None:
    first = render_conditions(None, Outcome.stalled("A", "x"), 1)
    old = [c.model_dump(by_alias=True, mode="json") for c in first]
    old[0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    again = render_conditions(old, Outcome.stalled("B", "y"), 2)
    assert again[0].model_dump(by_alias=True, mode="json")["lastTransitionTime"] == (
        "2020-01-01T00:00:00Z"
    )


def test_status_patch_clears_what_the_model_no_longer_has_and_skips_others_fields() -> None:
    status = ProjectStatus(observed_generation=2, tenant=None)
    patch = status_patch(status, exclude={"applications"})
    assert patch["tenant"] is None and "applications" not in patch
    assert patch["observedGeneration"] == 2
    assert unchanged({"observedGeneration": 2, "namespaces": [], "claimed": {}}, patch)
    assert not unchanged({"observedGeneration": 1}, patch)


def test_terminal_errors() -> None:
    assert is_terminal(ApiException(status=422))
    assert is_terminal(ApiException(status=403))
    assert not is_terminal(ApiException(status=409))
    assert not is_terminal(ApiException(status=503))
    assert not is_terminal(TimeoutError())
