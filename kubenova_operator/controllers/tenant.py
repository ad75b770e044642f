"""Tenant controller: a tenant and the Projects in its owner namespace, as one unit.

The budget links them (projects carve their quotas out of the tenant's, the apps
namespace gets the rest), so deciding them together, under one lock, is what keeps the
numbers consistent.

The kopf handlers are thin: they feed the in-memory store and ask the queue for a pass
(controllers/project.py does the same for Projects). A pass
1. decides (pure, resources/budget.py): which projects fit, whose namespaces are whose;
2. builds the desired children (pure builders in resources/) and plans the writes
   against the store (kube/plan.py);
3. writes them (one applier: server-side apply, field manager `kubenova`; namespaces
   are created, never applied into existence, see resources/ownership.py);
4. renders one Outcome per object (controllers/outcome.py) into its typed status.
A child the API server refuses makes the object whose spec produced it Stalled
(ApplyFailed, with the API server's message); its siblings carry on. A transient
failure raises, and the queue retries with backoff: the one retry policy.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import kopf

from ..api.common import API_VERSION, DriftPolicy
from ..api.project import ApplicationCounts, Project, ProjectStatus
from ..api.tenant import Tenant, TenantPhase, TenantStatus, apps_namespace, owner_namespace
from ..api.velasync import velasync_key
from ..integrations.kubevela import add_counts
from ..kube.diff import describe, object_key
from ..kube.kinds import WAVES, unserved_kinds, wave_of
from ..kube.plan import Changes, desired_digests, plan_changes
from ..kube.store import Key
from ..observability.metrics import count_drift, forget_tenant, record_phase, set_tenant_usage
from ..observability.reconcile import reconciler
from ..resources import labels as L
from ..resources.budget import Decision, ProjectInput, admit_projects
from ..resources.credentials import request_identities
from ..resources.fairness import tenant_flow_schema
from ..resources.kubevela import delivery_objects
from ..resources.namespaces import release_patch
from ..resources.ownership import NamespaceRecord, is_owned, namespace_conflict
from ..resources.project import project_children
from ..resources.quantity import (
    QuantityError,
    canonical_resource,
    exceeding,
    format_resources,
    invalid_quantities,
    parse_quantity,
    sum_resources,
)
from ..resources.quota import REQUESTS_COUNT
from ..resources.syncs import capsule_sync, vela_sync
from ..resources.tenant import tenant_children
from . import events
from .conditions import condition, find, is_true
from .context import Context, context_of
from .finalizers import ensure_finalizer, release_finalizer
from .outcome import Outcome, is_terminal, render_conditions, status_patch, unchanged
from .teardown import teardown_project, teardown_tenant
from .uninstall import hold_access, let_go, release_access

logger = logging.getLogger(__name__)

# Passes for these reasons expect differences: they are changes, not drift.
CHANGE_TRIGGERS = frozenset({"spec", "kubevela", "project-deleted", "capsule"})
# How soon to look again while a namespace is still being deleted.
TERMINATING_RECHECK_SECONDS = 5.0


def tenant_key(name: str) -> Key:
    return ("Tenant", "", name)


def projects_in(context: Context, tenant: str) -> list[dict[str, Any]]:
    """The Projects in the tenant's owner namespace, oldest first (the order budgets are
    granted in), those being deleted included."""
    found = context.stores.parents.in_namespace("Project", owner_namespace(tenant))
    return sorted(
        found, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"])
    )


def _deleting(body: dict[str, Any]) -> bool:
    return bool(body["metadata"].get("deletionTimestamp"))


def _project_input(body: dict[str, Any]) -> ProjectInput:
    project = Project.model_validate(body)
    standing = {k: parse_quantity(v) for k, v in project.status.claimed.items()}
    return ProjectInput(
        name=body["metadata"]["name"],
        spec=project.spec,
        standing=standing,
        built=bool(project.status.namespaces),
    )


def _built_at_generation(body: dict[str, Any]) -> bool:
    status = body.get("status") or {}
    return bool(status.get("namespaces")) and status.get("observedGeneration") == body[
        "metadata"
    ].get("generation")


def proxy_endpoint(context: Context, tenant: Tenant) -> str:
    """The API endpoint kubeconfigs of this tenant use: the tenant's capsule-proxy,
    else the cluster default, else the API server itself."""
    if tenant.spec.capsule_proxy:
        return tenant.spec.capsule_proxy.url
    settings = context.settings
    return settings.capsule_proxy_url or settings.api_server_url or context.kube.host


def _short(exc: BaseException) -> str:
    """The API server's message for a failed request (never a request body)."""
    reason = getattr(exc, "reason", None) or type(exc).__name__
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str) and '"message"' in body:
        try:
            return str(json.loads(body).get("message", reason))[:500]
        except ValueError:
            pass
    return str(reason)[:500]


@dataclass
class Failures:
    """What went wrong in a pass, by the object whose spec produced it: a project's
    name, or None for the tenant itself."""

    terminal: dict[str | None, list[str]] = field(default_factory=dict)
    transient: dict[str | None, list[str]] = field(default_factory=dict)

    def add(self, owner: str | None, what: str, exc: BaseException) -> None:
        bucket = self.terminal if is_terminal(exc) else self.transient
        bucket.setdefault(owner, []).append(f"{what}: {_short(exc)}")

    def outcome(self, owner: str | None) -> Outcome | None:
        if owner in self.terminal:
            return Outcome.stalled("ApplyFailed", "; ".join(self.terminal[owner]))
        if owner in self.transient:
            return Outcome.reconciling("ApplyRetrying", "; ".join(self.transient[owner]))
        return None


def _owner_of(obj: dict[str, Any], projects: set[str]) -> str | None:
    project = (obj["metadata"].get("labels") or {}).get(L.PROJECT)
    return project if project in projects else None


def _remember(context: Context, obj: dict[str, Any]) -> None:
    """Record what the API server returned, so the next pass does not mistake a watch
    event still in flight for drift (or re-create a namespace it just made)."""
    meta = obj.get("metadata") or {}
    if not obj.get("kind") or not meta.get("name"):
        return  # not an object (a Status): nothing to record
    context.stores.children.upsert(obj)
    if obj["kind"] == "Namespace":
        context.stores.namespaces[meta["name"]] = NamespaceRecord.of(obj)


async def _write_one(context: Context, obj: dict[str, Any]) -> dict[str, Any]:
    kube = context.kube
    if obj["kind"] == "Namespace" and obj["metadata"]["name"] not in context.stores.namespaces:
        # Created, not applied: applying would adopt a namespace somebody made since
        # the pass looked (409 then, and the next pass decides whose it is).
        return await kube.create(obj)
    return await kube.apply(obj)


async def _apply_all(
    context: Context, objects: list[dict[str, Any]], projects: set[str], failures: Failures
) -> None:
    """Apply in waves (kube/kinds.py says which kind goes when). A child that fails is
    charged to the object whose spec made it and does not stop the rest; what lives in
    a namespace that failed is skipped."""
    failed_namespaces: set[str] = set()
    for wave in WAVES:
        batch = [
            o
            for o in objects
            if wave_of(o["kind"]) == wave
            and o["metadata"].get("namespace") not in failed_namespaces
        ]
        results = await asyncio.gather(
            *(_write_one(context, o) for o in batch), return_exceptions=True
        )
        for obj, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                failures.add(_owner_of(obj, projects), describe(object_key(obj)), result)
                if obj["kind"] == "Namespace":
                    failed_namespaces.add(obj["metadata"]["name"])
            elif isinstance(result, BaseException):
                raise result
            else:
                _remember(context, result)


async def _execute(
    context: Context, changes: Changes, projects: set[str], failures: Failures, tenant: str
) -> None:
    kube = context.kube
    await _apply_all(context, changes.apply, projects, failures)
    for ns in changes.release:
        try:
            await kube.merge_patch("v1", "Namespace", ns, None, release_patch(tenant))
        except Exception as exc:
            failures.add(None, f"releasing Namespace {ns}", exc)
    for api_version, (kind, namespace, obj_name) in changes.prune:
        try:
            await kube.delete(api_version, kind, obj_name, namespace or None)
        except Exception as exc:
            failures.add(None, f"deleting {describe((kind, namespace, obj_name))}", exc)


def _own_children(context: Context, name: str, uid: str) -> dict[Key, dict[str, Any]]:
    """The tenant's children in the store: labelled for it, and for namespaces, created
    for it (a namespace somebody labelled by hand is never pruned or released)."""
    observed = {}
    for key, obj in context.stores.children.of_tenant(name):
        if key[0] == "Namespace" and not is_owned(context.stores.namespaces.get(key[2]), uid):
            continue
        observed[key] = obj
    # Kinds that went with their peer (KubeVela uninstalled): nothing of them is left
    # to prune.
    gone = unserved_kinds(kubevela=context.kubevela)
    return {k: v for k, v in observed.items() if k[0] not in gone}


@reconciler("tenant")
async def reconcile_tenant(context: Context, name: str, triggers: frozenset[str]) -> float | None:
    """One pass over tenant `name` and the Projects in its owner namespace; returns when
    to look again (None: at the next event)."""
    body = context.stores.parents.get(tenant_key(name))
    project_bodies = projects_in(context, name)
    if context.uninstalling:
        await let_go(context, name, body, project_bodies)
        return None
    if body is None:
        await _without_tenant(context, name, project_bodies)
        if not any(True for _ in context.stores.parents.of_kind("Tenant")):
            await release_access(context, "no tenants left", everyone=True)
        return None
    for project in project_bodies:
        if _deleting(project):
            await teardown_project(context, project, str(body["metadata"]["uid"]))
            await release_finalizer(context, project)
    project_bodies = [p for p in project_bodies if not _deleting(p)]
    if _deleting(body):
        return await _delete_tenant(context, name, body, project_bodies)
    await ensure_finalizer(context, body)
    # With a tenant to let go of, the operator's own access must outlive an uninstall
    # that deletes it in the same second (controllers/uninstall.py).
    await hold_access(context)
    requeue = await _build(context, name, body, project_bodies, triggers)
    if context.stores.children.get(("CapsuleSync", "", name)) is not None:
        # Its Capsule Tenant follows the tenant's spec and namespaces.
        context.capsule_queue.submit(name, "tenant")
    return requeue


async def _without_tenant(
    context: Context, name: str, project_bodies: list[dict[str, Any]]
) -> None:
    """Projects in `<name>-owner` with no Tenant `name`: reported; deleted ones let go."""
    for project in project_bodies:
        if _deleting(project):
            await release_finalizer(context, project)
            continue
        outcome = Outcome.stalled(
            "TenantNotFound",
            f"there is no Tenant {name!r}: a Project must be created in the owner "
            "namespace '<tenant>-owner' of an existing Tenant",
        )
        await write_project_status(context, project, outcome, tenant=None)
    if not project_bodies:
        context.queue.forget(name)  # nothing left to look after under this name
        context.stores.last_desired.pop(name, None)


async def _delete_tenant(
    context: Context, name: str, body: dict[str, Any], project_bodies: list[dict[str, Any]]
) -> float | None:
    """Hold the Tenant while it has Projects (deleting a tenant never cascades into its
    projects' namespaces behind a user's back); then tear it down and let it go."""
    for project in project_bodies:
        if not (project.get("status") or {}).get("namespaces"):
            await write_project_status(
                context,
                project,
                Outcome.stalled(
                    "TenantDeleting",
                    f"tenant {name!r} is being deleted: no new project is built in it",
                ),
                tenant=name,
            )
    if project_bodies:
        names = sorted(p["metadata"]["name"] for p in project_bodies)
        message = (
            f"waiting for {len(names)} Project(s) to be deleted first: {', '.join(names[:10])}"
        )
        outcome = Outcome.reconciling("DeletionBlocked", message)
        status = _tenant_status(context, body, outcome, phase=TenantPhase.TERMINATING)
        if await _patch_tenant_status(context, body, status):
            events.warning(body, "DeletionBlocked", message)
        return None  # each Project's deletion brings the next pass
    await teardown_tenant(context, name, body)
    await release_finalizer(context, body)
    return None


async def _build(
    context: Context,
    name: str,
    body: dict[str, Any],
    project_bodies: list[dict[str, Any]],
    triggers: frozenset[str],
) -> float | None:
    tenant = Tenant.model_validate(body)
    spec = tenant.spec
    uid = str(body["metadata"]["uid"])
    old_status = body.get("status") or {}

    # What no write can fix: the tenant's own namespaces are somebody else's, or its
    # budget is unreadable. Decided before anything is written.
    blocked = _tenant_blocked(context, name, uid, tenant)
    if blocked is not None:
        if await _patch_tenant_status(context, body, _tenant_status(context, body, blocked)):
            _announce(body, blocked)
        for project in project_bodies:
            await write_project_status(
                context,
                project,
                Outcome.stalled(
                    "TenantNotReady", f"tenant {name!r} is not ready: {blocked.message}"
                ),
                tenant=name,
            )
        return None

    inputs = [_project_input(p) for p in project_bodies]
    decisions, claimed = admit_projects(name, uid, spec, inputs, context.stores.namespaces)
    admitted = {d.name for d in decisions if d.admitted}
    by_name = {p["metadata"]["name"]: p for p in project_bodies}
    desired = _desired(
        context,
        name,
        uid,
        tenant,
        claimed=claimed,
        admitted=[(i, by_name[i.name]["metadata"]["uid"]) for i in inputs if i.name in admitted],
    )
    for project_name in sorted(admitted):
        await ensure_finalizer(context, by_name[project_name])

    report_only = spec.drift_policy == DriftPolicy.REPORT
    # Differences are drift only when nothing they could come from is changing: the
    # tenant built at its generation, no spec change or KubeVela (un)installation in
    # this pass, every admitted project built at its generation (a new or edited
    # project changes its own children and the apps namespace's quota).
    was_ready = is_true(old_status.get("conditions"), "Ready") and old_status.get(
        "observedGeneration"
    ) == body["metadata"].get("generation")
    drift_possible = (
        was_ready
        and not triggers & CHANGE_TRIGGERS
        and all(_built_at_generation(by_name[n]) for n in admitted)
    )
    changes = plan_changes(
        desired,
        _own_children(context, name, uid),
        drift_possible=drift_possible,
        report_only=report_only,
        admitted_projects=admitted,
        delete_namespaces_of={i.name for i in inputs if i.spec.deletion_policy == "Delete"},
        last_desired=context.stores.last_desired.get(name),
    )
    previous_desired = context.stores.last_desired.get(name) or {}
    context.stores.last_desired[name] = desired_digests(desired)
    failures = Failures()
    await _execute(context, changes, admitted, failures, name)
    _forget_unwritten(context.stores.last_desired[name], previous_desired, changes, failures)
    if changes.drifted:
        _report_drift(body, changes.drifted, healed=not report_only and not failures.terminal)

    waiting = set(changes.waiting)
    tenant_waiting = waiting & {owner_namespace(name), apps_namespace(name)}
    project_outcomes = {d.name: _project_outcome(d, failures, waiting) for d in decisions}
    namespaces = [owner_namespace(name), apps_namespace(name)]
    for decision in decisions:
        if decision.admitted:
            namespaces.extend(decision.namespaces)
    outcome = failures.outcome(None) or (
        _terminating(sorted(tenant_waiting))
        if tenant_waiting
        else Outcome.ready(f"{len(namespaces)} namespaces in place")
    )
    status = _tenant_status(
        context,
        body,
        outcome,
        namespaces=namespaces,
        projects=project_bodies,
        claimed=claimed,
        drifted=changes.drifted,
    )
    over = exceeding(spec.budget.hard, claimed)
    written = await _patch_tenant_status(context, body, status, counted=True)
    if written:
        _announce(body, outcome)
    if written and over and not is_true(old_status.get("conditions"), "BudgetExceeded"):
        events.warning(body, "BudgetExceeded", _over_message(over))
    for decision in decisions:
        await write_project_status(
            context,
            by_name[decision.name],
            project_outcomes[decision.name],
            tenant=name,
            decision=decision,
        )
    if failures.transient:
        # After the statuses say so: the queue retries the pass with backoff.
        raise RetryPass("; ".join(m for ms in failures.transient.values() for m in ms))
    everything = [outcome, *project_outcomes.values()]
    if any(o.reason == "NamespaceTerminating" for o in everything):
        return TERMINATING_RECHECK_SECONDS
    return None


def _forget_unwritten(
    remembered: dict[Key, str], previous: dict[Key, str], changes: Changes, failures: Failures
) -> None:
    """What a pass with failures meant to write but may not have (an API server
    restarting): the next pass must see it as a change still to make, not as drift."""
    if not (failures.transient or failures.terminal):
        return
    for obj in changes.apply:
        key = object_key(obj)
        if key in previous:
            remembered[key] = previous[key]
        else:
            remembered.pop(key, None)


def _project_outcome(decision: Decision, failures: Failures, waiting: set[str]) -> Outcome:
    if not decision.admitted:
        return Outcome.stalled(decision.reason, decision.message)
    failed = failures.outcome(decision.name)
    if failed is not None:
        return failed
    held = sorted(waiting & set(decision.namespaces))
    if held:
        return _terminating(held)
    return Outcome.ready(f"{len(decision.namespaces)} namespaces in place")


def _desired(
    context: Context,
    name: str,
    uid: str,
    tenant: Tenant,
    *,
    claimed: dict[str, Decimal],
    admitted: list[tuple[ProjectInput, str]],
) -> list[dict[str, Any]]:
    """Everything the tenant and its admitted projects ((input, Project uid)) are made
    of: the builders in resources/, one call each."""
    requests = context.stores.parents.in_namespace("KubeConfigRequest", owner_namespace(name))
    identities = request_identities(name, requests)
    desired = tenant_children(name, uid, tenant.spec, claimed, identities=identities)
    desired.append(capsule_sync(name, uid))
    desired.append(tenant_flow_schema(name, tenant.spec, {i.name: i.spec for i, _ in admitted}))
    for item, project_uid in admitted:
        desired.extend(
            project_children(item.name, name, uid, tenant.spec, item.spec, identities=identities)
        )
        if context.kubevela:
            desired.extend(delivery_objects(item.name, name, item.spec))
        desired.append(vela_sync(item.name, owner_namespace(name), project_uid, name))
    return desired


class RetryPass(Exception):
    """A pass met transient failures: the queue runs it again with backoff."""


def _terminating(namespaces: list[str]) -> Outcome:
    return Outcome.reconciling(
        "NamespaceTerminating",
        f"namespace {', '.join(namespaces)} is being deleted; it is rebuilt when that ends",
    )


def _tenant_blocked(context: Context, name: str, uid: str, tenant: Tenant) -> Outcome | None:
    invalid = invalid_quantities(tenant.spec.budget.hard)
    if invalid:
        return Outcome.stalled("InvalidSpec", "spec.budget.hard is invalid: " + "; ".join(invalid))
    for ns in (owner_namespace(name), apps_namespace(name)):
        why = namespace_conflict(
            ns, tenant=name, tenant_uid=uid, project=None, record=context.stores.namespaces.get(ns)
        )
        if why is not None:
            return Outcome.stalled("NamespaceConflict", why)
    return None


def _over_message(over: dict[str, tuple[Decimal, Decimal]]) -> str:
    return "; ".join(
        f"{k}: projects hold {format_resources({k: w})[k]}, budget is {format_resources({k: h})[k]}"
        for k, (w, h) in sorted(over.items())
    )


def _tenant_status(
    context: Context,
    body: dict[str, Any],
    outcome: Outcome,
    *,
    namespaces: list[str] | None = None,
    projects: list[dict[str, Any]] | None = None,
    claimed: dict[str, Decimal] | None = None,
    drifted: list[str] | None = None,
    phase: TenantPhase | None = None,
) -> TenantStatus:
    """The Tenant's status, rendered from the pass's outcome and findings. Without
    `namespaces` (a pass that built nothing) the last known lists are kept."""
    tenant = Tenant.model_validate(body)
    name = body["metadata"]["name"]
    generation = body["metadata"].get("generation")
    old = body.get("status") or {}
    extra: list[dict[str, Any]] = []
    if drifted is not None:
        extra.append(_drift_condition(tenant, old, drifted, generation))
    if claimed is not None:
        over = exceeding(tenant.spec.budget.hard, claimed)
        extra.append(
            condition("BudgetExceeded", True, "OverCommitted", _over_message(over), generation)
            if over
            else condition("BudgetExceeded", False, "WithinBudget", "", generation)
        )
    if phase is None:
        phase = TenantPhase(outcome.state.value)
    record_phase("Tenant", name, phase.value)
    previous = tenant.status
    usage = _usage(context, name)
    set_tenant_usage(name, _numbers(tenant.spec.budget.hard), _numbers(usage))
    return TenantStatus(
        observed_generation=generation,
        conditions=render_conditions(old.get("conditions"), outcome, generation, extra),
        phase=phase,
        namespaces=namespaces if namespaces is not None else previous.namespaces,
        namespace_count=len(namespaces) if namespaces is not None else previous.namespace_count,
        project_count=len(projects) if projects is not None else previous.project_count,
        usage=usage,
        allocated=format_resources(claimed) if claimed is not None else previous.allocated,
        proxy_endpoint=proxy_endpoint(context, tenant),
        applications=_application_counts(projects) if projects is not None else None,
    )


def _drift_condition(
    tenant: Tenant, old: dict[str, Any], drifted: list[str], generation: int | None
) -> dict[str, Any]:
    report = tenant.spec.drift_policy == DriftPolicy.REPORT
    if drifted and report:
        return condition(
            "Drifted",
            True,
            "DriftDetected",
            ("differs from the spec: " + "; ".join(drifted))[:2000],
            generation,
        )
    if drifted:
        return condition(
            "Drifted", False, "DriftHealed", ("restored " + "; ".join(drifted))[:2000], generation
        )
    previous = find(old.get("conditions"), "Drifted")
    if previous is not None and not (report and is_true(old.get("conditions"), "Drifted")):
        # Keep the last heal's message until something else happens, as of this
        # generation (without it, the condition flapped observedGeneration: one more
        # status write, one resync after every build).
        kept: dict[str, Any] = {
            k: previous[k] for k in ("type", "status", "reason", "message") if k in previous
        }
        return kept if generation is None else {**kept, "observedGeneration": generation}
    return condition("Drifted", False, "InSync", "", generation)


async def _patch_tenant_status(
    context: Context, body: dict[str, Any], status: TenantStatus, *, counted: bool = False
) -> bool:
    """Write the status if it changed; return whether it did. `counted`: the pass
    summed the projects' Application counts (else the last sum stays)."""
    patch = status_patch(status, exclude=None if counted else {"applications"})
    if unchanged(body.get("status"), patch):
        return False
    context.stores.parents.upsert(
        await context.kube.patch_status(
            API_VERSION, "Tenant", body["metadata"]["name"], None, patch
        )
    )
    return True


def _announce(body: dict[str, Any], outcome: Outcome) -> None:
    """A Warning Event when the Tenant's Ready reason turns to a failing one."""
    previous = find((body.get("status") or {}).get("conditions"), "Ready") or {}
    if not outcome.is_ready and previous.get("reason") != outcome.reason:
        events.warning(body, outcome.reason, outcome.message)


def _report_drift(body: dict[str, Any], drifted: list[str], *, healed: bool) -> None:
    for item in drifted:
        count_drift(
            body["metadata"]["name"], item.split(" ", 1)[0], "healed" if healed else "reported"
        )
    message = ("restored " if healed else "differs from the spec: ") + "; ".join(drifted)
    previous = find((body.get("status") or {}).get("conditions"), "Drifted") or {}
    # A heal is an event each time; a reported drift only when what differs changes.
    if healed or previous.get("message") != message[:2000]:
        (events.normal if healed else events.warning)(
            body, "DriftHealed" if healed else "DriftDetected", message
        )
    logger.info("tenant %s: %s", body["metadata"]["name"], message)


def _application_counts(project_bodies: list[dict[str, Any]]) -> ApplicationCounts | None:
    """The sum of the projects' KubeVela Application counts (None: none reported)."""
    reported = [
        ApplicationCounts.model_validate(counts)
        for p in project_bodies
        if (counts := (p.get("status") or {}).get("applications"))
    ]
    return add_counts(reported) if reported else None


def _usage(context: Context, tenant: str) -> dict[str, str]:
    """What the tenant's quotas use, but the owner namespace's count of requests: that
    is credentials.maxRequests, not budget, and the quota controller counts custom
    resources late (its monitors follow discovery), so a status that showed it would be
    rewritten whenever the count caught up."""
    used = []
    for key, obj in context.stores.children.of_tenant(tenant):
        if key[0] == "ResourceQuota":
            counted = (obj.get("status") or {}).get("used") or {}
            used.append({k: v for k, v in counted.items() if k != REQUESTS_COUNT})
    return format_resources(sum_resources(used))


def _numbers(resources: Mapping[str, str | int]) -> dict[str, float]:
    """Quantities as plain numbers in base units under ResourceQuota names, for the
    kubenova_tenant_budget/usage gauges (what does not parse is left out)."""
    numbers: dict[str, float] = {}
    for key, value in resources.items():
        try:
            numbers[canonical_resource(key)] = float(parse_quantity(value))
        except QuantityError:
            continue
    return numbers


async def write_project_status(
    context: Context,
    body: dict[str, Any],
    outcome: Outcome,
    *,
    tenant: str | None,
    decision: Decision | None = None,
) -> None:
    """Render a Project's outcome into its status (the `applications` counts belong to
    its VelaSync's controller and are left alone); an Event when its reason changes to
    a failing one."""
    project = Project.model_validate(body)
    generation = body["metadata"].get("generation")
    old = body.get("status") or {}
    status = ProjectStatus(
        observed_generation=generation,
        conditions=render_conditions(old.get("conditions"), outcome, generation),
        tenant=tenant,
        namespaces=decision.namespaces if decision else project.status.namespaces,
        claimed=format_resources(decision.claim) if decision else project.status.claimed,
    )
    patch = status_patch(status, exclude={"applications"})
    if unchanged(old, patch):
        return
    meta = body["metadata"]
    context.stores.parents.upsert(
        await context.kube.patch_status(
            API_VERSION, "Project", meta["name"], meta["namespace"], patch
        )
    )
    if (old.get("namespaces") or []) != (patch.get("namespaces") or []):
        # Its VelaSync summarizes these namespaces: tell it now, not at its next resync
        # (a write there a resync period late, and a VelaSync not Ready meanwhile). A
        # pass for a VelaSync not there (yet) does nothing.
        context.vela_queue.submit(velasync_key(meta["namespace"], meta["name"]), "project")
    previous = find(old.get("conditions"), "Ready")
    if not outcome.is_ready and (previous is None or previous.get("reason") != outcome.reason):
        events.warning(body, outcome.reason, outcome.message)


# --- kopf wiring -------------------------------------------------------------------

TENANTS = "tenants.v1alpha1.kubenova.io"


def trigger_of(previous: dict[str, Any] | None, body: dict[str, Any]) -> str:
    """ "spec" when the object is new to the operator or its generation moved (a spec
    change: its differences are not drift), else "event"."""
    if previous is None:
        return "spec"
    if previous["metadata"].get("generation") != body["metadata"].get("generation"):
        return "spec"
    if _deleting(body) and not _deleting(previous):
        return "spec"
    return "event"


@kopf.on.event(TENANTS)
async def tenant_event(
    event: kopf.RawEvent, body: kopf.Body, name: str, memo: kopf.Memo, **_: Any
) -> None:
    """Every change of a Tenant asks for a pass; kopf keeps no state of its own on the
    object (no annotations, no finalizer of its own: ours is added and removed by the
    pass, see controllers/finalizers.py)."""
    context = context_of(memo)
    if event.get("type") == "DELETED":
        context.stores.parents.remove(tenant_key(name))
        record_phase("Tenant", name, None)
        forget_tenant(name)
        context.queue.submit(name, "tenant-gone")  # its Projects are now orphans
        return
    if context.stores.parents.holds(tenant_key(name), dict(body)) and context.queue.knows(name):
        return  # the echo of our own status or finalizer write: nothing new
    previous = context.stores.parents.get(tenant_key(name))
    context.stores.parents.upsert({**body, "kind": "Tenant", "apiVersion": API_VERSION})
    context.queue.submit(name, trigger_of(previous, dict(body)))
