"""KubeVela, the pure parts: Application status -> summary -> counts, and a Project's
KubeVela footprint and delivery defaults. No cluster (the e2e tests run vela-core)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubenova_operator.api.project import ProjectSpec
from kubenova_operator.api.tenant import TenantSpec
from kubenova_operator.integrations.kubevela import (
    Health,
    add_counts,
    count,
    health,
    newly_failing,
    recovered,
    revision_limit,
    revisions_to_prune,
    summarize,
)
from kubenova_operator.resources import labels as L
from kubenova_operator.resources.kubevela import delivery_objects
from kubenova_operator.resources.project import project_children

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STUCK = timedelta(minutes=10)


def application(
    phase: str | None = "running",
    *,
    generation: int = 2,
    observed: int = 2,
    services: list[dict[str, Any]] | None = None,
    workflow: dict[str, Any] | None = None,
    revision: tuple[str, int] | None = ("web-v2", 2),
) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed}
    if phase is not None:
        status["status"] = phase
    if services is not None:
        status["services"] = services
    if workflow is not None:
        status["workflow"] = workflow
    if revision is not None:
        status["latestRevision"] = {"name": revision[0], "revision": revision[1]}
    return {
        "metadata": {"name": "web", "namespace": "acme-shop-dev", "generation": generation},
        "status": status,
    }


HEALTHY_SERVICE = {"name": "web", "healthy": True, "traits": [{"type": "scaler", "healthy": True}]}


def summary_of(app: dict[str, Any], **kwargs: Any) -> Any:
    return summarize(app, now=NOW, stuck_after=STUCK, **kwargs)


def test_running_with_every_service_and_trait_healthy_is_healthy() -> None:
    s = summary_of(application(services=[HEALTHY_SERVICE]))
    assert s.healthy and health(s) is Health.HEALTHY and s.message is None
    assert (s.revision, s.revision_number) == ("web-v2", 2)
    # Where to find its pods (logs) and its revision history.
    assert s.pod_selector == "app.oam.dev/name=web"
    assert s.revisions_selector == "app.oam.dev/name=web"


@pytest.mark.parametrize(
    ("app", "expected_message"),
    [
        # A generation vela-core has not looked at yet.
        (application(services=[HEALTHY_SERVICE], observed=1), "not yet observed"),
        # No services at all is not healthy.
        (application(services=[]), "no services reported"),
        # One unhealthy trait spoils it.
        (
            application(
                services=[
                    {
                        "name": "web",
                        "healthy": True,
                        "traits": [{"type": "gateway", "healthy": False, "message": "no host"}],
                    }
                ]
            ),
            "web/gateway: no host",
        ),
    ],
)
def test_running_is_not_enough(app: dict[str, Any], expected_message: str) -> None:
    s = summary_of(app)
    assert not s.healthy
    assert s.message is not None and expected_message in s.message
    assert health(s) is Health.PROGRESSING


def test_failed_phases_are_failing_with_the_service_message() -> None:
    s = summary_of(
        application(
            "unhealthy", services=[{"name": "web", "healthy": False, "message": "Ready:0/1"}]
        )
    )
    assert health(s) is Health.FAILING
    assert s.message == "web: Ready:0/1"


def test_workflow_running_past_the_limit_is_stuck() -> None:
    started = (NOW - STUCK - timedelta(seconds=5)).isoformat()
    workflow = {
        "startTime": started,
        "steps": [{"name": "deploy", "phase": "running", "message": "wait healthy"}],
    }
    s = summary_of(application("runningWorkflow", workflow=workflow))
    assert s.stuck and health(s) is Health.FAILING
    assert s.message == "workflow running for 605s: step deploy running: wait healthy"
    # Not yet past the limit: progressing.
    fresh = {**workflow, "startTime": (NOW - timedelta(seconds=30)).isoformat()}
    s = summary_of(application("runningWorkflow", workflow=fresh))
    assert not s.stuck and health(s) is Health.PROGRESSING


def test_an_application_without_status_is_progressing() -> None:
    s = summary_of(application(None, revision=None))
    assert s.phase is None and health(s) is Health.PROGRESSING


def test_since_is_kept_while_the_phase_stays() -> None:
    first = summary_of(application(services=[HEALTHY_SERVICE]))
    later = summarize(
        application(services=[HEALTHY_SERVICE]),
        now=NOW + timedelta(hours=1),
        stuck_after=STUCK,
        previous=first,
    )
    assert later.since == NOW
    changed = summarize(
        application("runningWorkflow"),
        now=NOW + timedelta(hours=1),
        stuck_after=STUCK,
        previous=first,
    )
    assert changed.since == NOW + timedelta(hours=1)


def test_counts_and_transitions() -> None:
    healthy = summary_of(application(services=[HEALTHY_SERVICE]))
    failing = summary_of(application("workflowFailed"))
    progressing = summary_of(application("rendering")).model_copy(update={"name": "api"})
    counts = count([healthy, progressing])
    assert (counts.total, counts.healthy, counts.progressing, counts.failing) == (2, 1, 1, 0)
    both = add_counts([counts, count([failing])])
    assert (both.total, both.healthy, both.progressing, both.failing) == (3, 1, 1, 1)
    # Only a change into failing is news; staying failing is not.
    assert newly_failing([healthy], [failing]) == [failing]
    assert newly_failing([failing], [failing]) == []
    assert newly_failing([], [failing]) == [failing]
    assert recovered([failing], [healthy]) == [healthy]
    assert recovered([progressing], [healthy]) == []


def test_recovery_through_progressing_is_announced_once() -> None:
    """failing -> progressing (a fix rolling out) -> healthy: one Event each way."""
    failing = summary_of(application("workflowFailed"))
    rolling = summary_of(application("runningWorkflow"), previous=failing)
    assert health(rolling) is Health.PROGRESSING and rolling.failed_since_healthy
    again = summary_of(application("workflowFailed"), previous=rolling)
    assert newly_failing([rolling], [again]) == []  # not news: it never got better
    healthy = summary_of(application(services=[HEALTHY_SERVICE]), previous=rolling)
    assert not healthy.failed_since_healthy
    assert recovered([rolling], [healthy]) == [healthy]
    # A plain rollout (never failing) recovers from nothing.
    fresh = summary_of(application("runningWorkflow"))
    assert not fresh.failed_since_healthy and recovered([fresh], [healthy]) == []


def test_project_footprint_is_what_velaux_would_make() -> None:
    spec = ProjectSpec.model_validate(
        {"environments": [{"name": "dev"}], "developers": [{"kind": "User", "name": "bob"}]}
    )
    objs = project_children("shop", "acme", "uid-acme", TenantSpec(), spec)
    ns = next(o for o in objs if o["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["namespace.oam.dev/env"] == "shop-dev"
    assert ns["metadata"]["labels"]["usage.oam.dev/control-plane"] == "env"
    binding = next(
        o
        for o in objs
        if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "kubevela:writer:application"
    )
    assert binding["roleRef"]["name"] == "kubevela:writer:application"
    names = {(s["kind"], s["name"]) for s in binding["subjects"]}
    assert ("Group", "kubevela:project:shop") in names
    assert ("User", "bob") in names and ("ServiceAccount", "shop-deployer") in names


def test_no_delivery_objects_for_one_environment() -> None:
    assert delivery_objects("api", "acme", ProjectSpec()) == []
    one = ProjectSpec.model_validate({"environments": [{"name": "prod"}]})
    assert delivery_objects("api", "acme", one) == []


def test_delivery_defaults_promote_through_environments() -> None:
    spec = ProjectSpec.model_validate(
        {"environments": [{"name": "dev"}, {"name": "staging"}, {"name": "prod"}]}
    )
    objs = delivery_objects("shop", "acme", spec)
    policies = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for o in objs
        if o["kind"] == "Policy"
    }
    for env in ("dev", "staging", "prod"):
        topology = policies[("acme-shop-dev", f"kubenova-env-{env}")]
        assert topology["type"] == "topology"
        assert topology["properties"] == {"clusters": ["local"], "namespace": f"acme-shop-{env}"}
        assert topology["metadata"]["labels"][L.PROJECT] == "shop"
    (workflow,) = [o for o in objs if o["kind"] == "Workflow"]
    assert workflow["metadata"]["namespace"] == "acme-shop-dev"
    assert [(s["name"], s["type"]) for s in workflow["steps"]] == [
        ("deploy-dev", "deploy"),
        ("approve-staging", "suspend"),
        ("deploy-staging", "deploy"),
        ("approve-prod", "suspend"),
        ("deploy-prod", "deploy"),
    ]
    # Turned off in the spec: nothing.
    off = spec.model_copy(
        update={"delivery": spec.delivery.model_copy(update={"default_workflow": False})}
    )
    assert delivery_objects("shop", "acme", off) == []


def test_revision_limit_prefers_the_applications_own_policy() -> None:
    app = {"spec": {"policies": [{"type": "garbage-collect", "properties": {}}]}}
    assert revision_limit(app, 5) == 5
    app["spec"]["policies"].append(
        {"type": "garbage-collect", "properties": {"applicationRevisionLimit": 20}}
    )
    assert revision_limit(app, 5) == 20
    assert revision_limit({}, 5) == 5


@pytest.mark.parametrize(
    ("names", "latest", "limit", "pruned"),
    [
        # The latest is in use; one superseded revision may stay.
        (["web-v1", "web-v2", "web-v3"], "web-v3", 1, ["web-v1"]),
        # Numeric order, not string order.
        (["web-v10", "web-v9", "web-v11", "web-v8"], "web-v11", 1, ["web-v8", "web-v9"]),
        # Within the limit: nothing.
        (["web-v1", "web-v2"], "web-v2", 1, []),
        # The latest is never pruned, even when it is not the newest name (a rollback).
        (["web-v1", "web-v2", "web-v3"], "web-v1", 0, ["web-v2", "web-v3"]),
        # No latest yet: everything counts as superseded.
        (["web-v1", "web-v2"], None, 1, ["web-v1"]),
    ],
)
def test_revisions_to_prune(
    names: list[str], latest: str | None, limit: int, pruned: list[str]
) -> None:
    assert revisions_to_prune(names, latest, limit) == pruned
