"""Reading KubeVela Applications (core.oam.dev/v1beta1): pure functions from an
Application's status to Kubenova's compact summary, and from summaries to counts.

What vela-core writes (v1.10): `status.status` is the phase (`starting`, `rendering`,
`policyGenerating`, `runningWorkflow`, `workflowSuspending`, `workflowTerminated`,
`workflowFailed`, `unhealthy`, `deleting`, `running`); `status.observedGeneration`;
`status.latestRevision{name,revision}`; `status.services[]` with `healthy`, `message`
and `traits[]` (each with `healthy`, `message`); `status.workflow` with its own
`status`, `startTime`, `finished` and `steps[]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ..api.common import parse_time
from ..api.project import ApplicationCounts
from ..api.velasync import ApplicationSummary

APPLICATION_API = "core.oam.dev/v1beta1"
REVISION_LABEL = "app.oam.dev/name"  # on ApplicationRevisions and on what an app deploys
MESSAGE_LIMIT = 1024

PHASE_RUNNING = "running"
PHASE_RUNNING_WORKFLOW = "runningWorkflow"
# Phases in which the Application will not get better without a change from its user.
FAILED_PHASES = frozenset({"workflowFailed", "workflowTerminated", "unhealthy"})


class Health(StrEnum):
    """The bucket an Application is counted in."""

    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    FAILING = "failing"


def _unhealthy_parts(services: Iterable[Mapping[str, Any]]) -> list[str]:
    """`service: message` for every service or trait that is not healthy."""
    parts = []
    for service in services:
        name = service.get("name", "?")
        if not service.get("healthy"):
            parts.append(f"{name}: {service.get('message') or 'not healthy'}")
        for trait in service.get("traits") or []:
            if not trait.get("healthy"):
                detail = trait.get("message") or "not healthy"
                parts.append(f"{name}/{trait.get('type', '?')}: {detail}")
    return parts


def _workflow_message(workflow: Mapping[str, Any]) -> str | None:
    """The message of the first failed (or else waiting) workflow step."""
    steps = list(workflow.get("steps") or [])
    for wanted in ("failed", "running"):
        for step in steps:
            if step.get("phase") == wanted and (step.get("message") or step.get("reason")):
                what = step.get("message") or step.get("reason")
                return f"step {step.get('name', '?')} {wanted}: {what}"
    return workflow.get("message") or None


def summarize(
    app: Mapping[str, Any],
    *,
    now: datetime,
    stuck_after: timedelta,
    previous: ApplicationSummary | None = None,
) -> ApplicationSummary:
    """One Application, compactly.

    Healthy means: phase `running`, the current generation observed, and at least one
    service, every service and trait healthy. An Application in `runningWorkflow` for
    longer than `stuck_after` (from its workflow's start) is reported as stuck.
    """
    meta = app.get("metadata") or {}
    status = app.get("status") or {}
    phase = status.get("status") or None
    services = list(status.get("services") or [])
    workflow = status.get("workflow") or {}
    revision = status.get("latestRevision") or {}
    observed = status.get("observedGeneration") == meta.get("generation")
    unhealthy = _unhealthy_parts(services)
    healthy = phase == PHASE_RUNNING and observed and bool(services) and not unhealthy

    started = parse_time(workflow.get("startTime"))
    stuck = phase == PHASE_RUNNING_WORKFLOW and started is not None and now - started > stuck_after
    if healthy:
        message = None
    elif unhealthy:
        message = "; ".join(unhealthy)
    elif phase == PHASE_RUNNING and not services:
        message = "no services reported"
    elif phase == PHASE_RUNNING and not observed:
        message = "the latest change is not yet observed by vela-core"
    else:
        message = _workflow_message(workflow)
    if stuck:
        seconds = int((now - started).total_seconds()) if started else 0
        message = f"workflow running for {seconds}s: {message or 'no progress reported'}"

    name = str(meta.get("name", ""))
    since = now
    if previous is not None and previous.phase == phase and previous.since is not None:
        since = previous.since
    summary = ApplicationSummary(
        name=name,
        namespace=str(meta.get("namespace", "")),
        phase=phase,
        healthy=healthy,
        message=message[:MESSAGE_LIMIT] if message else None,
        revision=revision.get("name"),
        revision_number=revision.get("revision"),
        workflow=workflow.get("status") or workflow.get("phase") or None,
        stuck=stuck,
        pod_selector=f"{REVISION_LABEL}={name}",
        revisions_selector=f"{REVISION_LABEL}={name}",
        since=since,
    )
    if not healthy:
        summary.failed_since_healthy = health(summary) is Health.FAILING or bool(
            previous and previous.failed_since_healthy
        )
    return summary


def health(summary: ApplicationSummary) -> Health:
    if summary.healthy:
        return Health.HEALTHY
    if summary.stuck or summary.phase in FAILED_PHASES:
        return Health.FAILING
    return Health.PROGRESSING


def count(summaries: Iterable[ApplicationSummary]) -> ApplicationCounts:
    counts = ApplicationCounts()
    for summary in summaries:
        counts.total += 1
        bucket = health(summary)
        setattr(counts, bucket.value, getattr(counts, bucket.value) + 1)
    return counts


def add_counts(items: Iterable[ApplicationCounts]) -> ApplicationCounts:
    total = ApplicationCounts()
    for item in items:
        total.total += item.total
        total.healthy += item.healthy
        total.progressing += item.progressing
        total.failing += item.failing
    return total


def newly_failing(
    old: Iterable[ApplicationSummary], new: Iterable[ApplicationSummary]
) -> list[ApplicationSummary]:
    """Applications failing now that had not failed since they were last healthy (or
    are new): the transitions worth an Event. A message change while failing, or
    failing again on the way back, is not a new one."""
    before = {(s.namespace, s.name): s.failed_since_healthy for s in old}
    return [
        s
        for s in new
        if health(s) is Health.FAILING and not before.get((s.namespace, s.name), False)
    ]


def recovered(
    old: Iterable[ApplicationSummary], new: Iterable[ApplicationSummary]
) -> list[ApplicationSummary]:
    """Applications healthy now that failed since they were last healthy (however long
    they were progressing in between)."""
    before = {(s.namespace, s.name): s.failed_since_healthy for s in old}
    return [
        s for s in new if health(s) is Health.HEALTHY and before.get((s.namespace, s.name), False)
    ]


GC_POLICY_TYPE = "garbage-collect"


def revision_limit(app: Mapping[str, Any], project_limit: int) -> int:
    """How many superseded ApplicationRevisions the Application keeps: its own inline
    garbage-collect policy's `applicationRevisionLimit` if it has one (vela-core reads
    only inline policies for this), else the project's default."""
    for policy in (app.get("spec") or {}).get("policies") or []:
        if policy.get("type") != GC_POLICY_TYPE:
            continue
        limit = (policy.get("properties") or {}).get("applicationRevisionLimit")
        if isinstance(limit, int) and limit >= 0:
            return limit
    return project_limit


def revision_number(name: str) -> int:
    """The N of `<app>-v<N>` (0 when the name does not end that way)."""
    _, _, number = name.rpartition("-v")
    return int(number) if number.isdigit() else 0


def revisions_to_prune(names: Iterable[str], latest: str | None, limit: int) -> list[str]:
    """vela-core's own rule (pkg/resourcekeeper/gc_rev.go), with the project's limit:
    the latest revision is in use and always kept; of the others, all but the newest
    `limit` go, oldest first."""
    superseded = sorted((n for n in names if n != latest), key=revision_number)
    excess = len(superseded) - limit
    return superseded[:excess] if excess > 0 else []
