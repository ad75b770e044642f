"""VelaSync controller: the project as KubeVela sees it, and the health of its
Applications rolled up into the Project and the Tenant.

The Kubernetes-side footprint of the KubeVela project (env labels on the namespaces,
the `kubevela:project:<project>` RoleBindings) and its delivery defaults (Policies,
Workflow) are children of the Project, built by the tenant's pass like every other
child (resources/project.py, resources/kubevela.py), so they are applied, pruned and
healed by the one applier. This controller reads: it watches Applications in tenant
namespaces into an in-memory copy, and on each change (coalesced per VelaSync, like
tenant passes) summarizes them into the VelaSync status, counts them into the Project
status, and tells people about transitions with Events.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import kopf

from ..api.common import API_VERSION, now, parse_time
from ..api.project import Project
from ..api.tenant import owner_namespace
from ..api.velasync import ApplicationSummary, VelaSyncStatus, velasync_key
from ..integrations import KUBEVELA
from ..integrations.kubevela import (
    APPLICATION_API,
    PHASE_RUNNING_WORKFLOW,
    Health,
    count,
    health,
    newly_failing,
    recovered,
    revision_limit,
    revisions_to_prune,
    summarize,
)
from ..kube.store import created_before, list_started
from ..observability.metrics import APPLICATIONS_BY_PHASE
from ..resources import labels as L
from . import events
from .children import RELISTS, RESYNCS, observe_child
from .conditions import condition
from .context import Context, context_of
from .finalizers import drop_kopf_leftovers
from .outcome import Outcome, render_conditions, status_patch, unchanged
from .scheduler import Slice
from .tenant import tenant_key
from .wiring import wants_pass

logger = logging.getLogger(__name__)

VELASYNCS = "velasyncs.v1alpha1.kubenova.io"
# Passes asked for by Application events (and what follows from them); the others
# (resyncs, VelaSync changes) also check whether KubeVela is still served.
WATCH_TRIGGERS = frozenset({"application", "stuck-check", "relist"})
MAX_SUMMARIES = 500
MAX_FAILURES, MAX_FAILURE_MESSAGE = 10, 512
# This controller's bookkeeping (pending stuck re-checks, revisions checked, phases
# exported) is the Context's `vela` (controllers/context.py VelaState).


def _velasync_of(context: Context, namespace: str) -> str | None:
    """The VelaSync key of the project that `namespace` belongs to, if any."""
    record = context.stores.namespaces.get(namespace)
    tenant, project = (record.tenant, record.project) if record else (None, None)
    return velasync_key(owner_namespace(tenant), project) if tenant and project else None


def _set_installed(context: Context, installed: bool) -> None:
    """Record whether KubeVela is served; on a change, every tenant is re-planned, so
    the delivery defaults are built (or no longer expected) without a restart."""
    if context.kubevela == installed:
        return
    context.kubevela = installed
    logger.info("KubeVela is %s", "installed" if installed else "no longer installed")
    for tenant in list(context.stores.parents.of_kind("Tenant")):
        context.queue.submit(tenant["metadata"]["name"], "kubevela")


def _summaries(
    context: Context, namespaces: list[str], previous: list[ApplicationSummary]
) -> list[ApplicationSummary]:
    before = {(s.namespace, s.name): s for s in previous}
    stuck_after = timedelta(seconds=context.settings.app_stuck_seconds)
    at = now()
    out = []
    for ns in namespaces:
        for name, app in sorted(context.stores.applications.get(ns, {}).items()):
            out.append(
                summarize(app, now=at, stuck_after=stuck_after, previous=before.get((ns, name)))
            )
    return out


def _schedule_recheck(context: Context, key: str, namespaces: list[str]) -> None:
    """Wake up when the next running workflow would count as stuck: no event marks
    that moment, and waiting for the periodic resync would report it late."""
    stuck_after = timedelta(seconds=context.settings.app_stuck_seconds)
    deadlines = []
    for ns in namespaces:
        for app in context.stores.applications.get(ns, {}).values():
            status = app.get("status") or {}
            started = parse_time((status.get("workflow") or {}).get("startTime"))
            if status.get("status") == PHASE_RUNNING_WORKFLOW and started is not None:
                deadlines.append(started + stuck_after)
    future = [d for d in deadlines if d > now()]
    if not future:
        context.scheduler.cancel("stuck-check", key)
        return
    delay = (min(future) - now()).total_seconds() + 1
    context.scheduler.at(
        "stuck-check", key, delay, lambda: context.vela_queue.submit(key, "stuck-check")
    )


def _export(context: Context, key: str, summaries: list[ApplicationSummary], project: str) -> None:
    namespace = key.split("/", 1)[0]
    by_phase: dict[str, int] = {}
    for summary in summaries:
        phase = summary.phase or "unknown"
        by_phase[phase] = by_phase.get(phase, 0) + 1
    for phase in context.vela.exported.get(key, set()) - by_phase.keys():
        APPLICATIONS_BY_PHASE.labels(namespace, project, phase).set(0)
    for phase, n in by_phase.items():
        APPLICATIONS_BY_PHASE.labels(namespace, project, phase).set(n)
    context.vela.exported[key] = set(by_phase)


def _announce(
    context: Context,
    project: dict[str, Any],
    old: list[ApplicationSummary],
    new: list[ApplicationSummary],
) -> None:
    """Events on transitions only: to failing (Warning), and back to healthy. Every
    phase change is logged."""
    # A phase of None: vela-core has not written a status yet.
    phases = {(p.namespace, p.name): p.phase or "(no status)" for p in old}
    for summary in new:
        before = phases.get((summary.namespace, summary.name), "(new)")
        after = summary.phase or "(no status)"
        if before != after:
            logger.info(
                "Application %s/%s: phase %s -> %s (revision %s)",
                summary.namespace,
                summary.name,
                before,
                after,
                summary.revision_number,
            )

    def on_both(summary: ApplicationSummary, warning: bool, reason: str, what: str) -> None:
        post = events.warning if warning else events.normal
        post(project, reason, f"Application {summary.namespace}/{summary.name} is {what}")
        app = context.stores.applications.get(summary.namespace, {}).get(summary.name)
        if app is not None:
            post({**app, "apiVersion": APPLICATION_API, "kind": "Application"}, reason, what)

    for summary in newly_failing(old, new):
        state = "stuck" if summary.stuck else (summary.phase or "unknown")
        on_both(summary, True, "ApplicationUnhealthy", f"{state}: {summary.message}")
    for summary in recovered(old, new):
        on_both(summary, False, "ApplicationRecovered", "healthy again")


async def reconcile_velasync(context: Context, key: str, triggers: frozenset[str]) -> None:
    namespace, name = key.split("/", 1)
    body = context.stores.children.get(("VelaSync", namespace, name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    if await drop_kopf_leftovers(context, {**body, "apiVersion": API_VERSION, "kind": "VelaSync"}):
        return  # (a replica that just took over: what the event path missed)
    kube = context.kube
    if triggers <= WATCH_TRIGGERS and context.kubevela:
        # Application events come only while KubeVela is served: no discovery needed.
        installed = True
    else:
        installed = await kube.has_kind(KUBEVELA.api_version, KUBEVELA.kind)
        _set_installed(context, installed)
    generation = body["metadata"].get("generation")
    old = body.get("status") or {}
    project_name = body["spec"]["projectRef"]["name"]
    project = context.stores.parents.get(("Project", namespace, project_name))
    namespaces = list(((project or {}).get("status") or {}).get("namespaces") or [])
    previous = [ApplicationSummary.model_validate(a) for a in old.get("applications") or []]
    summaries: list[ApplicationSummary] = []
    counts = None
    if not installed:
        _export(context, key, [], project_name)
        outcome = Outcome.stalled(KUBEVELA.missing_reason, KUBEVELA.missing_message())
        extra = [
            condition(
                "Available", False, KUBEVELA.missing_reason, KUBEVELA.missing_message(), generation
            )
        ]
    else:
        summaries = _summaries(context, namespaces, previous)
        counts = count(summaries)
        outcome = (
            Outcome.ready(
                f"{counts.total} Applications in {len(namespaces)} namespaces", reason="Synced"
            )
            if namespaces
            else Outcome.reconciling(
                "ProjectNotReady", f"Project {project_name} has no namespaces yet"
            )
        )
        extra = [
            condition(
                "Available",
                True,
                "KubeVelaFound",
                f"Application ({KUBEVELA.api_version}) is served",
                generation,
            ),
            condition(
                "ApplicationsHealthy",
                counts.failing == 0,
                "AllHealthy" if counts.failing == 0 else "ApplicationsFailing",
                "; ".join(
                    f"{s.namespace}/{s.name}: {s.message}"
                    for s in summaries
                    if health(s) is Health.FAILING
                )[:2000],
                generation,
            ),
        ]
        _schedule_recheck(context, key, namespaces)
        _export(context, key, summaries, project_name)
    status = VelaSyncStatus(
        observed_generation=generation,
        conditions=render_conditions(old.get("conditions"), outcome, generation, extra),
        available=installed,
        namespaces=namespaces,
        applications=summaries[:MAX_SUMMARIES],
        counts=counts,
    )
    patch = status_patch(status, exclude={"last_sync_time"})
    if not unchanged(old, patch):
        patch["lastSyncTime"] = now().isoformat().replace("+00:00", "Z")
        context.stores.children.upsert(
            await kube.patch_status(API_VERSION, "VelaSync", name, namespace, patch)
        )
    if project is not None:
        if installed:
            _announce(context, project, previous, summaries)
            await _prune_revisions(context, project, summaries)
        await _write_project_counts(
            context, project, _project_applications(summaries, patch["counts"])
        )


async def _prune_revisions(
    context: Context, project: dict[str, Any], summaries: list[ApplicationSummary]
) -> None:
    """Keep each Application's ApplicationRevisions within its limit (see
    integrations/kubevela.py). Checked when an Application's revision or its limit
    changes, so a steady state costs no requests."""
    project_limit = Project.model_validate(project).spec.delivery.revision_limit
    for s in summaries:
        app = context.stores.applications.get(s.namespace, {}).get(s.name)
        if app is None or not s.revision_number:
            continue
        limit = revision_limit(app, project_limit)
        key = (s.namespace, s.name)
        # Revision numbers only grow, so there are at most that many revisions.
        if (
            context.vela.checked.get(key) == (s.revision_number, limit)
            or s.revision_number <= limit + 1
        ):
            context.vela.checked[key] = (s.revision_number, limit)
            continue
        revisions = await context.kube.list(
            APPLICATION_API, "ApplicationRevision", s.namespace, label_selector=s.revisions_selector
        )
        names = [r["metadata"]["name"] for r in revisions]
        for name in revisions_to_prune(names, s.revision, limit):
            await context.kube.delete(APPLICATION_API, "ApplicationRevision", name, s.namespace)
            logger.info(
                "pruned ApplicationRevision %s/%s (limit %d of %s)",
                s.namespace,
                name,
                limit,
                s.name,
            )
        context.vela.checked[key] = (s.revision_number, limit)


def _project_applications(
    summaries: list[ApplicationSummary], counts: dict[str, int] | None
) -> dict[str, Any] | None:
    """The Project's view: the counts and what is wrong with the failing ones."""
    if counts is None:
        return None
    failures = [
        f"{s.namespace}/{s.name}: {s.message or s.phase}"[:MAX_FAILURE_MESSAGE]
        for s in summaries
        if health(s) is Health.FAILING
    ]
    return {**counts, "failures": failures[:MAX_FAILURES] or None}


async def _write_project_counts(
    context: Context, project: dict[str, Any], counts: dict[str, Any] | None
) -> None:
    """Counts into the Project's status; then its tenant's pass sums them up."""

    def present(value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else {k: v for k, v in value.items() if v is not None}

    # A merge patch: "failures": null removes the list once nothing fails.
    if present((project.get("status") or {}).get("applications")) == present(counts):
        return
    meta = project["metadata"]
    context.stores.parents.upsert(
        await context.kube.patch_status(
            API_VERSION, "Project", meta["name"], meta["namespace"], {"applications": counts}
        )
    )
    tenant = (meta.get("labels") or {}).get(L.TENANT) or (project.get("status") or {}).get("tenant")
    if tenant and context.stores.parents.get(tenant_key(tenant)) is not None:
        context.queue.submit(tenant, "applications")


async def relist_applications(context: Context) -> None:
    """Forget Applications a fresh LIST no longer has (deleted while no watch ran) and
    have their projects' VelaSyncs re-summarized."""
    if not context.kubevela:
        return
    started = list_started()
    listed = await context.kube.list(APPLICATION_API, "Application")
    seen = {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in listed}
    for namespace, apps in list(context.stores.applications.items()):
        for name, app in list(apps.items()):
            if (namespace, name) in seen or not created_before(app, started):
                continue
            logger.info("Application %s/%s was deleted unseen; forgetting it", namespace, name)
            context.stores.drop_application(namespace, name)
            if (key := _velasync_of(context, namespace)) is not None:
                context.vela_queue.submit(key, "relist")


RELISTS.append(relist_applications)


# --- kopf wiring -------------------------------------------------------------------


def resync_velasyncs(context: Context, keys: Slice) -> None:
    for body in context.stores.children.of_kind("VelaSync"):
        meta = body["metadata"]
        key = velasync_key(meta["namespace"], meta["name"])
        if key in keys:
            context.vela_queue.submit(key, "resync")


RESYNCS.append(resync_velasyncs)


@kopf.on.event(VELASYNCS)
async def velasync_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Kept in the store (a child of its Project: a deleted one is rebuilt by the
    tenant's pass); a new VelaSync or a spec change gets a pass, and the scheduler
    resyncs every VelaSync."""
    context = context_of(memo)
    meta = body.get("metadata", {})
    key = velasync_key(meta.get("namespace", ""), meta.get("name", ""))
    current = {**body, "kind": "VelaSync"}
    if event.get("type") != "DELETED" and await drop_kopf_leftovers(context, current):
        return  # the patch's own event follows
    # What this controller saw last (the store's copy may already be the tenant pass's
    # own write of it, which is not a pass of this controller).
    seen = context.watched.setdefault("velasync", {})
    previous = seen.get(key)
    await observe_child(context, event, current)
    if event.get("type") == "DELETED":
        seen.pop(key, None)
        context.scheduler.cancel("stuck-check", key)
        context.vela_queue.forget(key)
        for phase in context.vela.exported.pop(key, set()):
            APPLICATIONS_BY_PHASE.remove(meta.get("namespace", ""), meta.get("name", ""), phase)
    else:
        seen[key] = current
        if wants_pass(previous, current):
            context.vela_queue.submit(key, "spec")


@kopf.on.event("core.oam.dev", "v1beta1", "applications")
async def application_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """An Application changed: if it is in a project namespace, that project's
    VelaSync takes a pass (coalesced: a burst of status updates costs one or two)."""
    assert namespace is not None  # Applications are namespaced
    context = context_of(memo)
    key = _velasync_of(context, namespace)
    if key is None:
        context.stores.drop_application(namespace, name)  # not ours (or no longer)
        return
    if event.get("type") == "DELETED":
        context.stores.drop_application(namespace, name)
        context.vela.checked.pop((namespace, name), None)
    else:
        context.stores.keep_application(dict(body))
    owner_ns, project = key.split("/", 1)
    if context.stores.children.get(("VelaSync", owner_ns, project)) is not None:
        context.vela_queue.submit(key, "application")
