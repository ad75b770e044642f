"""Tenant controller.

A tenant is reconciled as one unit with its Projects: the budget links them (projects
carve their quotas out of the tenant's, the apps namespace gets the rest), so deciding
them together, under one lock, is what keeps the numbers consistent.

The handlers are thin: they feed the in-memory store and ask the queue for a pass.
`reconcile_tenant` computes the desired children with the pure builders in
`resources/`, compares them with the store, and writes only the differences.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from typing import Any

import kopf

from ..api.common import API_VERSION, DriftPolicy
from ..api.project import ApplicationCounts, Project
from ..api.tenant import Tenant, apps_namespace, owner_namespace
from ..config import get_settings
from ..integrations.kubevela import add_counts
from ..kube import store
from ..kube.diff import describe, object_key
from ..kube.kinds import VELA_CHILD_KINDS
from ..kube.plan import Changes, plan_changes
from ..observability.metrics import DRIFT_CORRECTIONS, record_phase
from ..observability.reconcile import reconciler
from ..resources.budget import Decision, ProjectInput, admit_projects
from ..resources.kubevela import delivery_objects
from ..resources.namespaces import release_patch
from ..resources.project import project_children
from ..resources.quantity import exceeding, format_resources, parse_quantity, sum_resources
from ..resources.syncs import capsule_sync, vela_sync
from ..resources.tenant import tenant_children
from . import events
from .conditions import condition, find, is_true, merge_conditions, same_status
from .context import ctx
from .teardown import teardown_tenant

logger = logging.getLogger(__name__)

# Namespaces first (everything else lives in them), ServiceAccounts before the
# RoleBindings naming them, ClusterRoles before their bindings.
_WAVES = (("Namespace",), ("ServiceAccount", "ClusterRole"), None)


def tenant_key(name: str) -> store.Key:
    return ("Tenant", "", name)


def projects_of(tenant: str) -> list[dict[str, Any]]:
    """The tenant's Projects, oldest first (the order budgets are granted in)."""
    namespace = owner_namespace(tenant)
    found = [
        p
        for p in store.parents.of_kind("Project")
        if p["metadata"].get("namespace") == namespace
        and not p["metadata"].get("deletionTimestamp")
    ]
    return sorted(
        found, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"])
    )


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


def proxy_endpoint(tenant: Tenant) -> str:
    """The API endpoint kubeconfigs of this tenant use: the tenant's capsule-proxy,
    else the cluster default, else the API server itself."""
    if tenant.spec.capsule_proxy:
        return tenant.spec.capsule_proxy.url
    settings = ctx().settings
    return settings.capsule_proxy_url or settings.api_server_url or ctx().kube.host


async def _apply_all(objects: list[dict[str, Any]]) -> list[str]:
    """Apply in waves; return the errors (an object that failed does not stop the rest
    of its wave, so one bad child never blocks a whole tenant)."""
    errors: list[str] = []
    for wave in _WAVES:
        earlier = {kind for w in _WAVES if w for kind in w}
        batch = [
            o
            for o in objects
            if (wave is None and o["kind"] not in earlier)
            or (wave is not None and o["kind"] in wave)
        ]
        results = await asyncio.gather(
            *(ctx().kube.apply(o) for o in batch), return_exceptions=True
        )
        for obj, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                errors.append(f"{describe(object_key(obj))}: {_short(result)}")
            else:
                store.children.upsert(result)
    return errors


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or type(exc).__name__
    body = getattr(exc, "body", None)
    if isinstance(body, str) and '"message"' in body:
        try:
            return str(json.loads(body).get("message", reason))[:300]
        except ValueError:
            pass
    return str(reason)[:300]


# Passes for these reasons expect differences: they are changes, not drift.
CHANGE_TRIGGERS = frozenset({"spec", "kubevela", "project-deleted"})


async def reconcile_tenant(name: str, triggers: frozenset[str]) -> None:
    """Make the cluster match the Tenant `name` and its Projects; write only what
    differs; report what was found."""
    body = store.parents.get(tenant_key(name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    tenant = Tenant.model_validate(body)
    spec = tenant.spec
    old_status = body.get("status") or {}
    was_ready = is_true(old_status.get("conditions"), "Ready") and old_status.get(
        "observedGeneration"
    ) == body["metadata"].get("generation")

    project_bodies = projects_of(name)
    inputs = [_project_input(p) for p in project_bodies]
    decisions, claimed = admit_projects(name, spec, inputs, store.namespace_owners)
    desired = tenant_children(name, spec, claimed)
    desired.append(capsule_sync(name, body["metadata"]["uid"]))
    by_name = {p["metadata"]["name"]: p for p in project_bodies}
    for decision, item in zip(decisions, inputs, strict=True):
        if decision.admitted:
            desired.extend(project_children(item.name, name, spec, item.spec))
            if ctx().kubevela:
                desired.extend(delivery_objects(item.name, name, item.spec))
            desired.append(
                vela_sync(
                    item.name, owner_namespace(name), by_name[item.name]["metadata"]["uid"], name
                )
            )

    report_only = spec.drift_policy == DriftPolicy.REPORT
    # Differences are drift only when nothing they could come from is changing: the
    # tenant built at its generation, no spec change or KubeVela (un)installation in
    # this pass, every admitted project built at its generation (a new or edited
    # project changes its own children and the apps namespace's quota).
    drift_possible = (
        was_ready
        and not triggers & CHANGE_TRIGGERS
        and all(_built_at_generation(by_name[d.name]) for d in decisions if d.admitted)
    )
    observed = dict(store.children.of_tenant(name))
    if not ctx().kubevela:
        # KubeVela's kinds went with KubeVela: nothing of them is left to prune.
        vela_kinds = {kind for _, kind in VELA_CHILD_KINDS}
        observed = {k: v for k, v in observed.items() if k[0] not in vela_kinds}
    changes = plan_changes(
        desired,
        observed,
        drift_possible=drift_possible,
        report_only=report_only,
        admitted_projects={d.name for d in decisions if d.admitted},
        delete_namespaces_of={i.name for i in inputs if i.spec.deletion_policy == "Delete"},
    )
    errors = await _execute(changes)
    if changes.drifted:
        _report_drift(body, changes.drifted, healed=not report_only and not errors)
    errors += [
        f"Namespace {ns} is being deleted; it is rebuilt when that ends" for ns in changes.waiting
    ]
    await _write_statuses(
        body,
        tenant=tenant,
        decisions=decisions,
        project_bodies=project_bodies,
        claimed=claimed,
        drifted=changes.drifted,
        errors=errors,
    )
    if errors:
        raise kopf.TemporaryError("; ".join(errors)[:1000], delay=5)


async def _execute(changes: Changes) -> list[str]:
    kube = ctx().kube
    errors = await _apply_all(changes.apply)
    for ns in changes.release:
        try:
            await kube.merge_patch("v1", "Namespace", ns, None, release_patch())
        except Exception as exc:
            errors.append(f"releasing Namespace {ns}: {_short(exc)}")
    for api_version, (kind, namespace, obj_name) in changes.prune:
        try:
            await kube.delete(api_version, kind, obj_name, namespace or None)
        except Exception as exc:
            errors.append(f"deleting {describe((kind, namespace, obj_name))}: {_short(exc)}")
    return errors


def _report_drift(body: dict[str, Any], drifted: list[str], *, healed: bool) -> None:
    for item in drifted:
        DRIFT_CORRECTIONS.labels(item.split(" ", 1)[0], "healed" if healed else "reported").inc()
    message = ("restored " if healed else "differs from the spec: ") + "; ".join(drifted)
    previous = find((body.get("status") or {}).get("conditions"), "Drifted") or {}
    # A heal is an event each time; a reported drift only when what differs changes.
    if healed or previous.get("message") != message[:2000]:
        (events.normal if healed else events.warning)(
            body, "DriftHealed" if healed else "DriftDetected", message
        )
    logger.info("tenant %s: %s", body["metadata"]["name"], message)


async def _write_statuses(
    body: dict[str, Any],
    *,
    tenant: Tenant,
    decisions: list[Decision],
    project_bodies: list[dict[str, Any]],
    claimed: dict[str, Decimal],
    drifted: list[str],
    errors: list[str],
) -> None:
    name = body["metadata"]["name"]
    generation = body["metadata"].get("generation")
    spec = tenant.spec
    old = body.get("status") or {}
    namespaces = [owner_namespace(name), apps_namespace(name)]
    for decision in decisions:
        namespaces.extend(decision.namespaces)

    over = exceeding(spec.budget.hard, claimed)
    wanted = []
    if errors:
        wanted.append(
            condition("Ready", False, "ApplyFailed", "; ".join(errors)[:2000], generation)
        )
    else:
        wanted.append(
            condition(
                "Ready", True, "Reconciled", f"{len(namespaces)} namespaces in place", generation
            )
        )
    if drifted and spec.drift_policy == DriftPolicy.REPORT:
        wanted.append(
            condition(
                "Drifted",
                True,
                "DriftDetected",
                ("differs from the spec: " + "; ".join(drifted))[:2000],
                generation,
            )
        )
    elif drifted:
        wanted.append(
            condition(
                "Drifted", False, "DriftHealed", "restored " + "; ".join(drifted)[:2000], generation
            )
        )
    elif spec.drift_policy == DriftPolicy.REPORT and is_true(old.get("conditions"), "Drifted"):
        # Still different unless this pass compared and found nothing.
        wanted.append(condition("Drifted", False, "InSync", "", generation))
    elif not find(old.get("conditions"), "Drifted"):
        wanted.append(condition("Drifted", False, "InSync", "", generation))
    if over:
        detail = "; ".join(
            f"{k}: projects hold {format_resources({k: w})[k]}, budget is "
            f"{format_resources({k: h})[k]}"
            for k, (w, h) in sorted(over.items())
        )
        wanted.append(condition("BudgetExceeded", True, "OverCommitted", detail, generation))
    else:
        wanted.append(condition("BudgetExceeded", False, "WithinBudget", "", generation))
    refused = [d for d in decisions if not d.admitted]
    usage = _usage(name)
    phase = "Ready" if not errors and not refused and not over else "Degraded"
    status = {
        "observedGeneration": generation,
        "phase": phase,
        "namespaces": namespaces,
        "namespaceCount": len(namespaces),
        "projectCount": len(decisions),
        "usage": usage,
        "allocated": format_resources(claimed),
        "proxyEndpoint": proxy_endpoint(tenant),
        "applications": _application_counts(project_bodies),
    }
    status["conditions"] = merge_conditions(old.get("conditions"), wanted)
    record_phase("Tenant", name, phase)
    if not same_status(old, status):
        store.parents.upsert(
            await ctx().kube.patch_status(API_VERSION, "Tenant", name, None, status)
        )
        if over and not is_true(old.get("conditions"), "BudgetExceeded"):
            events.warning(body, "BudgetExceeded", wanted[-1]["message"])

    by_name = {p["metadata"]["name"]: p for p in project_bodies}
    for decision in decisions:
        await _write_project_status(by_name[decision.name], name, decision)


def _application_counts(project_bodies: list[dict[str, Any]]) -> dict[str, int] | None:
    """The sum of the projects' KubeVela Application counts (None: none reported)."""
    reported = [
        ApplicationCounts.model_validate(counts)
        for p in project_bodies
        if (counts := (p.get("status") or {}).get("applications"))
    ]
    return add_counts(reported).model_dump(by_alias=True) if reported else None


def _usage(tenant: str) -> dict[str, str]:
    used = []
    for key, obj in store.children.of_tenant(tenant):
        if key[0] == "ResourceQuota":
            used.append((obj.get("status") or {}).get("used") or {})
    return format_resources(sum_resources(used))


async def _write_project_status(body: dict[str, Any], tenant: str, decision: Decision) -> None:
    generation = body["metadata"].get("generation")
    old = body.get("status") or {}
    if decision.admitted:
        ready = condition(
            "Ready",
            True,
            "Reconciled",
            f"{len(decision.namespaces)} namespaces in place",
            generation,
        )
    else:
        ready = condition("Ready", False, decision.reason, decision.message, generation)
    status = {
        "observedGeneration": generation,
        "tenant": tenant,
        "namespaces": decision.namespaces,
        "claimed": format_resources(decision.claim),
    }
    status["conditions"] = merge_conditions(old.get("conditions"), [ready])
    if same_status(old, status):
        return
    store.parents.upsert(
        await ctx().kube.patch_status(
            API_VERSION,
            "Project",
            body["metadata"]["name"],
            body["metadata"]["namespace"],
            status,
        )
    )
    previous = find(old.get("conditions"), "Ready")
    if not decision.admitted and (previous is None or previous.get("reason") != decision.reason):
        events.warning(body, decision.reason, decision.message)


# --- kopf wiring -------------------------------------------------------------------

TENANTS = "tenants.v1alpha1.kubenova.io"


@kopf.on.event(TENANTS)
async def tenant_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    if event.get("type") == "DELETED":
        store.parents.remove(tenant_key(body["metadata"]["name"]))
        ctx().queue.forget(body["metadata"]["name"])
        record_phase("Tenant", body["metadata"]["name"], None)
    else:
        store.parents.upsert(dict(body))


@kopf.on.resume(TENANTS)
@kopf.on.create(TENANTS)
@kopf.on.update(TENANTS)
@reconciler("tenant")
async def tenant_changed(name: str, body: kopf.Body, **_: Any) -> None:
    store.parents.upsert(dict(body))  # the handler may run before the event handler
    await ctx().queue.run(name, "spec")


@kopf.timer(
    TENANTS, interval=get_settings().resync_seconds, initial_delay=get_settings().resync_seconds
)
@reconciler("tenant-resync")
async def tenant_resync(name: str, **_: Any) -> None:
    """The safety net: re-check everything from the store (no API reads)."""
    await ctx().queue.nudge(name, "timer")


@kopf.on.delete(TENANTS)
@reconciler("tenant-delete")
async def tenant_deleted(name: str, body: kopf.Body, **_: Any) -> None:
    await teardown_tenant(name, dict(body))
