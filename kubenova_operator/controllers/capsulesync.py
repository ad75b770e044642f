"""CapsuleSync controller: the tenant as Capsule sees it.

One CapsuleSync per Tenant (built by the tenant's pass). While the cluster serves
Capsule's Tenant kind (discovery, re-checked on every resync, so an installation is
noticed without a restart), a pass
1. builds the desired Capsule Tenant (pure, resources/capsule.py) and compares it with
   the one the watch last saw: missing, or a field Kubenova owns changed by hand, is
   written back with server-side apply (field manager `kubenova`): healed in place,
   never deleted or recreated (deleting a Capsule Tenant deletes its namespaces);
2. makes sure the tenant's credentials are Capsule users (its owner namespace's
   ServiceAccount group in the CapsuleConfiguration's spec.users), so capsule-proxy
   filters what they see;
3. has Capsule adopt tenant namespaces it does not count yet (created before Capsule
   was installed): touching their `capsule.clastix.io/tenant` label runs them through
   Capsule's namespace webhook, which adds the ownerReference Capsule counts by;
4. reports: Available, the API version, the Capsule Tenant's name, its namespaces as
   Capsule counts them, the last sync and the corrections made.
A refusal from Capsule (its webhooks are failurePolicy Fail: down, or saying no) is a
condition with Capsule's message on the CapsuleSync plus an Event, and the pass
raises: the CapsuleSync queue (controllers/queue.py) retries with backoff, the one
retry policy, never a hot loop.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from ..api.capsulesync import CapsuleSyncStatus
from ..api.common import API_VERSION, now
from ..api.tenant import Tenant
from ..integrations import CAPSULE
from ..observability.metrics import count_drift
from ..resources import labels as L
from ..resources.capsule import (
    CAPSULE_API,
    CAPSULE_CONFIGURATION_KIND,
    capsule_ready,
    capsule_tenant,
    capsule_user_group,
    drifted_fields,
    tenant_namespaces,
    users_with,
)
from . import events
from .children import RESYNCS
from .conditions import condition, find
from .context import Context, context_of
from .finalizers import drop_kopf_leftovers
from .outcome import Outcome, render_conditions, status_patch, unchanged
from .scheduler import Slice
from .tenant import _short, tenant_key
from .wiring import watched_as_child

logger = logging.getLogger(__name__)

CAPSULESYNCS = "capsulesyncs.v1alpha1.kubenova.io"
# Passes asked for by watch events on Capsule's objects: Capsule is served then.
# So do the tenant's own passes, which ask for one after each of theirs.
WATCH_TRIGGERS = frozenset({"capsule-tenant", "capsule-configuration", "tenant"})
# A namespace touched for adoption is looked at again after this long.
ADOPTION_RECHECK_SECONDS = 2.0
ADOPTION_RETRY_SECONDS = 10.0
ADOPTION_FIELD_MANAGER = "kubenova-capsule"
# While Capsule has not reported on a Capsule Tenant, it is read again this often.
CAPSULE_STATUS_RECHECK_SECONDS = 5.0


class CapsuleRefused(Exception):
    """Capsule (or the API server on its behalf) refused a write; the message is
    Capsule's. Raised after it is reported, so the queue retries with backoff."""


def _sync_key(name: str) -> tuple[str, str, str]:
    return ("CapsuleSync", "", name)


def _set_installed(context: Context, installed: bool) -> None:
    if context.capsule.installed == installed:
        return
    context.capsule.installed = installed
    logger.info("Capsule is %s", "installed" if installed else "no longer installed")
    if not installed:
        context.capsule.tenants.clear()
        context.capsule.configuration = None


async def _configuration(context: Context) -> dict[str, Any] | None:
    """The CapsuleConfiguration Capsule runs with: from its watch, else one GET."""
    if context.capsule.configuration is None:
        context.capsule.configuration = await context.kube.get(
            CAPSULE_API, CAPSULE_CONFIGURATION_KIND, context.settings.capsule_configuration
        )
    return context.capsule.configuration


async def _ensure_user(context: Context, tenant: str) -> str | None:
    """Add the tenant's group to the CapsuleConfiguration's spec.users (an atomic list
    owned by the cluster admin: a merge patch of the whole list, guarded by the
    resourceVersion it was read at, so a concurrent edit is never lost). Returns what
    is wrong, or None."""
    config = await _configuration(context)
    name = context.settings.capsule_configuration
    if config is None:
        return f"there is no CapsuleConfiguration {name!r}: capsule-proxy cannot filter"
    users = users_with((config.get("spec") or {}).get("users") or [], [capsule_user_group(tenant)])
    if users is None:
        return None
    patch = {
        "metadata": {"resourceVersion": config["metadata"]["resourceVersion"]},
        "spec": {"users": users},
    }
    try:
        context.capsule.configuration = await context.kube.merge_patch(
            CAPSULE_API, CAPSULE_CONFIGURATION_KIND, name, None, patch
        )
    except ApiException as exc:
        context.capsule.configuration = None  # read it again next time
        if exc.status == 409:
            raise  # changed since it was read: the retry reads it again
        raise CapsuleRefused(f"updating CapsuleConfiguration {name}: {_short(exc)}") from exc
    logger.info("CapsuleConfiguration %s: %s added to spec.users", name, tenant)
    return None


async def _adopt(context: Context, tenant: str, missing: list[str]) -> None:
    """Run namespaces Capsule does not count yet through its namespace webhook (an
    apply of their capsule.clastix.io/tenant label under a field manager of its own:
    Kubenova's applied configuration of the namespace is left as it is)."""
    for namespace in missing:
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {L.CAPSULE_TENANT: tenant}},
        }
        try:
            await context.kube.apply(body, field_manager=ADOPTION_FIELD_MANAGER)
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to adopt
                raise CapsuleRefused(f"adopting Namespace {namespace}: {_short(exc)}") from exc


def _status(
    body: dict[str, Any],
    outcome: Outcome,
    *,
    available: bool,
    extra: dict[str, Any],
    namespaces: list[str] | None = None,
    corrections: int | None = None,
) -> CapsuleSyncStatus:
    generation = body["metadata"].get("generation")
    old = body.get("status") or {}
    return CapsuleSyncStatus(
        observed_generation=generation,
        conditions=render_conditions(old.get("conditions"), outcome, generation, [extra]),
        available=available,
        api_version=CAPSULE_API if available else None,
        capsule_tenant=body["metadata"]["name"] if available else None,
        namespaces=namespaces if namespaces is not None else list(old.get("namespaces") or []),
        drift_corrections=(
            corrections if corrections is not None else int(old.get("driftCorrections") or 0)
        ),
    )


async def _installed(context: Context, triggers: frozenset[str]) -> bool | None:
    """Whether Capsule is served (None: not worth asking now)."""
    if triggers <= WATCH_TRIGGERS and context.capsule.installed:
        return True  # its watches are delivering: it is
    if triggers <= {"tenant"} and not context.capsule.installed:
        return None  # a tenant pass while it is not installed: the resync looks for it
    installed = await context.kube.has_kind(CAPSULE.api_version, CAPSULE.kind)
    _set_installed(context, installed)
    return installed


async def _heal(
    context: Context, body: dict[str, Any], tenant_name: str, desired: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The live Capsule Tenant, written first when it is missing or differs from
    `desired` in what Kubenova owns; and whether that was drift (the live object moved
    away from what was last written as it is wanted now: a change of the Tenant's spec
    is not drift)."""
    live = context.capsule.tenants.get(tenant_name)
    drift = drifted_fields(desired, live) if live is not None else []
    if live is not None and not drift:
        return live, False
    drifted = bool(drift) and context.capsule.applied.get(tenant_name) == desired
    if drifted:
        message = f"Capsule Tenant {tenant_name}: {', '.join(drift)} changed by hand; healed"
        events.warning(body, "Drifted", message)
        count_drift(tenant_name, "Tenant.capsule.clastix.io", "healed")
        logger.info(message)
    try:
        live = await context.kube.apply(desired)
    except ApiException as exc:
        if exc.status == 409:
            raise
        raise CapsuleRefused(f"applying Capsule Tenant {tenant_name}: {_short(exc)}") from exc
    created = tenant_name not in context.capsule.tenants
    context.capsule.tenants[tenant_name] = live
    if changed := drifted_fields(desired, live):
        # Stored other than written (an admission webhook's patch, then the CRD's
        # defaults): not what Kubenova wanted, so not remembered as applied; the pass
        # its watch event brings writes it again, and that is not drift.
        context.capsule.applied.pop(tenant_name, None)
        logger.warning(
            "Capsule Tenant %s: %s stored other than written; writing it again",
            tenant_name,
            ", ".join(changed),
        )
    else:
        context.capsule.applied[tenant_name] = desired
    if created:
        # Capsule refuses a namespace labelled for a Capsule Tenant that does not exist
        # yet: the tenant's pass that met that refusal runs again now.
        context.queue.submit(tenant_name, "capsule")
    return live, drifted


def _sync_outcome(
    live: dict[str, Any], expected: list[str], problem: str | None
) -> tuple[Outcome, float | None]:
    ready, why = capsule_ready(live)
    counted = tenant_namespaces(live.get("status"))
    not_counted = [ns for ns in expected if ns not in counted]
    if problem:
        return Outcome.stalled("CapsuleUsersNotConfigured", problem), None
    if not ready:
        return Outcome.reconciling("CapsuleTenantNotReady", why), CAPSULE_STATUS_RECHECK_SECONDS
    if not_counted:
        message = f"Capsule does not count {len(not_counted)} namespace(s) yet: " + ", ".join(
            not_counted[:10]
        )
        return Outcome.reconciling("NamespacesNotAdopted", message), ADOPTION_RETRY_SECONDS
    message = (
        f"Capsule Tenant {live['metadata']['name']} is Active with {len(counted)} namespace(s)"
    )
    return Outcome.ready(message, reason="Synced"), None


async def reconcile_capsulesync(
    context: Context, name: str, triggers: frozenset[str]
) -> float | None:
    body = context.stores.children.get(_sync_key(name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    tenant_name = (body.get("spec") or {}).get("tenantRef", {}).get("name") or name
    tenant_body = context.stores.parents.get(tenant_key(tenant_name))
    if tenant_body is None or tenant_body["metadata"].get("deletionTimestamp"):
        return None
    generation = body["metadata"].get("generation")
    installed = await _installed(context, triggers)
    if installed is None:
        return None
    if not installed:
        # Not an error of the CapsuleSync's: a human installs Capsule (or not), and
        # the next resync notices. What was synced last stays in the status.
        outcome = Outcome.stalled(CAPSULE.missing_reason, CAPSULE.missing_message())
        missing = condition(
            "Available", False, CAPSULE.missing_reason, CAPSULE.missing_message(), generation
        )
        await _write_status(context, body, _status(body, outcome, available=False, extra=missing))
        return None

    tenant = Tenant.model_validate(tenant_body)
    desired = capsule_tenant(tenant_name, str(tenant_body["metadata"]["uid"]), tenant.spec)
    corrections = int((body.get("status") or {}).get("driftCorrections") or 0)
    expected = sorted(tenant.status.namespaces)
    requeue: float | None = None
    await _refresh_unreported(context, tenant_name)
    try:
        live, drifted = await _heal(context, body, tenant_name, desired)
        corrections += drifted
        problem = await _ensure_user(context, tenant_name)
        counted = tenant_namespaces(live.get("status"))
        # A namespace Capsule does not count is touched again at most every
        # ADOPTION_RETRY_SECONDS (Capsule may have been installed, its webhooks not yet
        # registered, when it was touched); the status says what is still not counted.
        at = time.monotonic()
        due = [
            ns
            for ns in expected
            if ns not in counted
            and at - context.capsule.adopted.get(ns, -ADOPTION_RETRY_SECONDS)
            >= ADOPTION_RETRY_SECONDS
        ]
        if due:
            await _adopt(context, tenant_name, due)
            context.capsule.adopted.update(dict.fromkeys(due, at))
            requeue = ADOPTION_RECHECK_SECONDS
        for ns in counted:
            context.capsule.adopted.pop(ns, None)
    except CapsuleRefused as exc:
        # Capsule said no, or its webhooks are down (failurePolicy Fail): reported with
        # its message, and retried by the queue with backoff. One Event per refusal
        # that is new, not one per failing pass while Capsule stays down.
        ready = find((body.get("status") or {}).get("conditions"), "Ready") or {}
        if (ready.get("reason"), ready.get("message")) != ("CapsuleRefused", str(exc)):
            events.warning(body, "CapsuleRefused", str(exc))
        outcome = Outcome.stalled("CapsuleRefused", str(exc))
        status = _status(
            body, outcome, available=True, extra=_available(generation), corrections=corrections
        )
        await _write_status(context, body, status, synced=False)
        raise
    outcome, later = _sync_outcome(live, expected, problem)
    status = _status(
        body,
        outcome,
        available=True,
        extra=_available(generation),
        namespaces=tenant_namespaces(live.get("status")),
        corrections=corrections,
    )
    await _write_status(context, body, status)
    return requeue or later


async def _refresh_unreported(context: Context, tenant_name: str) -> None:
    """Read a Capsule Tenant Capsule has not reported on yet from the API server, not
    only from the watch. kopf starts watching a kind it finds in discovery when a CRD of
    its group changes; when Capsule is installed while the operator runs, the last of
    those events can come before discovery lists Capsule's Tenant (seen in e2e), and no
    watch starts until a restart. Bounded: one GET per CAPSULE_STATUS_RECHECK_SECONDS,
    only until Capsule reports."""
    cached = context.capsule.tenants.get(tenant_name)
    if cached is None or capsule_ready(cached)[0]:
        return
    fresh = await context.kube.get(CAPSULE_API, "Tenant", tenant_name)
    if fresh is not None:
        context.capsule.tenants[tenant_name] = fresh


def _available(generation: int | None) -> dict[str, Any]:
    return condition(
        "Available",
        True,
        f"{CAPSULE.name}Found",
        f"{CAPSULE.kind} ({CAPSULE.api_version}) is served",
        generation,
    )


async def _write_status(
    context: Context, body: dict[str, Any], status: CapsuleSyncStatus, synced: bool = True
) -> None:
    old = body.get("status") or {}
    patch = status_patch(status, exclude={"last_sync_time"})
    if status.available is False:
        # Nothing synced: what was synced last stays as it was.
        for key in ("capsuleTenant", "namespaces"):
            patch.pop(key, None)
    if unchanged(old, patch):
        return
    if synced and status.available:
        patch["lastSyncTime"] = now().isoformat().replace("+00:00", "Z")
    written = await context.kube.patch_status(
        API_VERSION, "CapsuleSync", body["metadata"]["name"], None, patch
    )
    context.stores.children.upsert(written)


# --- kopf wiring -------------------------------------------------------------------

# A child of its Tenant: a deleted one is rebuilt by the tenant's pass.
watched_as_child(CAPSULESYNCS, "CapsuleSync")


@kopf.on.event(CAPSULESYNCS, id="capsulesync-pass")
async def capsulesync_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """A CapsuleSync appeared or changed (its spec; its status writes come back here
    too, and cost one pass that writes nothing)."""
    context = context_of(memo)
    name = body.get("metadata", {}).get("name", "")
    if event.get("type") == "DELETED":
        return
    if await drop_kopf_leftovers(context, dict(body)):
        return  # kopf's finalizer of earlier releases removed; its own event follows
    status = body.get("status") or {}
    if status.get("observedGeneration") == body.get("metadata", {}).get("generation") and status:
        return  # our own status write: nothing new to act on
    context.capsule_queue.submit(name, "spec")


def capsulesync_resync(context: Context, keys: Slice) -> None:
    """The periodic re-check (discovery: Capsule installed or removed since), from the
    operator's scheduler: a kopf timer would put kopf's finalizer on every CapsuleSync."""
    for sync in context.stores.children.of_kind("CapsuleSync"):
        if sync["metadata"]["name"] in keys:
            context.capsule_queue.submit(sync["metadata"]["name"], "resync")


RESYNCS.append(capsulesync_resync)


@kopf.on.event("capsule.clastix.io", "v1beta2", "tenants")
async def capsule_tenant_event(
    event: kopf.RawEvent, body: kopf.Body, name: str, memo: kopf.Memo, **_: Any
) -> None:
    """A Capsule Tenant changed (Capsule's status, or a hand edit): its CapsuleSync
    takes a pass, which heals and reports."""
    context = context_of(memo)
    labels = body.get("metadata", {}).get("labels") or {}
    if labels.get(L.MANAGED_BY) != L.MANAGER:
        context.capsule.tenants.pop(name, None)
        return
    if event.get("type") == "DELETED":
        context.capsule.tenants.pop(name, None)
    else:
        context.capsule.tenants[name] = dict(body)
    if context.stores.children.get(_sync_key(name)) is not None:
        context.capsule_queue.submit(name, "capsule-tenant")


@kopf.on.event("capsule.clastix.io", "v1beta2", "capsuleconfigurations")
async def capsule_configuration_event(
    event: kopf.RawEvent, body: kopf.Body, name: str, memo: kopf.Memo, **_: Any
) -> None:
    """The CapsuleConfiguration changed: every CapsuleSync re-checks its users entry."""
    context = context_of(memo)
    if name != context.settings.capsule_configuration:
        return
    context.capsule.configuration = None if event.get("type") == "DELETED" else dict(body)
    for sync in context.stores.children.of_kind("CapsuleSync"):
        context.capsule_queue.submit(sync["metadata"]["name"], "capsule-configuration")
