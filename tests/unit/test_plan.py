"""What a pass writes, and what it calls drift (pure: no cluster)."""

from __future__ import annotations

from typing import Any

from kubenova_operator.controllers.tenant import Failures, _forget_unwritten
from kubenova_operator.kube.diff import object_key
from kubenova_operator.kube.plan import Changes, desired_digests, plan_changes
from kubenova_operator.resources import labels as L


def binding(name: str, *subjects: str, project: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": name,
            "namespace": "t-apps",
            "labels": L.managed_labels("t", project),
        },
        "subjects": [{"kind": "User", "name": s} for s in subjects],
    }


def plan(
    desired: list[dict[str, Any]],
    observed: list[dict[str, Any]],
    *,
    drift_possible: bool = True,
    report_only: bool = False,
    last: list[dict[str, Any]] | None = None,
) -> Any:
    return plan_changes(
        desired,
        {object_key(o): o for o in observed},
        drift_possible=drift_possible,
        report_only=report_only,
        admitted_projects={"web"},
        delete_namespaces_of=set(),
        last_desired=desired_digests(last) if last is not None else None,
    )


def test_a_deleted_child_is_drift_and_healed() -> None:
    want = [binding("a", "alice"), binding("b", "bob")]
    changes = plan(want, [want[0]], last=want)
    assert changes.drifted == ["RoleBinding t-apps/b (missing)"]
    assert changes.apply == [want[1]]


def test_report_only_reports_without_writing() -> None:
    want = [binding("a", "alice")]
    changes = plan(want, [], report_only=True, last=want)
    assert changes.drifted and not changes.apply


def test_a_changed_desire_is_not_drift_even_when_another_child_drifted() -> None:
    before = [binding("a", "alice"), binding("b", "bob")]
    now = [binding("a", "alice", "kcr-laptop"), binding("b", "bob")]
    # "a" changed because a credential was added; "b" was deleted by someone.
    changes = plan(now, [before[0]], last=before)
    assert changes.drifted == ["RoleBinding t-apps/b (missing)"]
    assert {o["metadata"]["name"] for o in changes.apply} == {"a", "b"}


def test_no_drift_while_the_parent_is_changing() -> None:
    want = [binding("a", "alice")]
    changes = plan(want, [], drift_possible=False, report_only=True, last=want)
    assert not changes.drifted and changes.apply == want  # a change is written


def test_steady_state_writes_nothing_and_strays_are_pruned() -> None:
    want = [binding("a", "alice")]
    stray = binding("old", "mallory")
    held = binding("held", "x", project="refused")  # of a project not admitted: left alone
    changes = plan(want, [want[0], stray, held], last=want)
    assert not changes.apply and not changes.drifted
    assert [key for _, key in changes.prune] == [("RoleBinding", "t-apps", "old")]


def test_a_pass_with_failures_does_not_remember_what_it_failed_to_write() -> None:
    """An apply that failed (the API server restarting) stays a change to make: the
    retry must not report it as drift."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}}
    new = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "n"}}
    key_a, key_b = ("ConfigMap", "n", "a"), ("ConfigMap", "n", "b")
    remembered = {key_a: "new-a", key_b: "new-b"}
    changes = Changes(apply=[cm, new])
    _forget_unwritten(remembered, {key_a: "old-a"}, changes, Failures())
    assert remembered == {key_a: "new-a", key_b: "new-b"}  # nothing failed: kept
    failures = Failures()
    failures.add(None, "ConfigMap n/a", TimeoutError())
    _forget_unwritten(remembered, {key_a: "old-a"}, changes, failures)
    assert remembered == {key_a: "old-a"}
