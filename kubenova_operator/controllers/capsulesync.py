"""CapsuleSync controller: the tenant as Capsule sees it. For now it reports whether
Capsule is installed (discovery, re-checked on every resync, so an installation is
noticed without a restart); syncing into Capsule builds on this."""

from __future__ import annotations

from typing import Any

import kopf

from ..api.capsulesync import CapsuleSyncStatus
from ..api.common import API_VERSION, now
from ..integrations import CAPSULE
from .conditions import condition
from .context import Context, context_of
from .outcome import Outcome, render_conditions, status_patch, unchanged
from .wiring import level_triggered, watched_as_child

CAPSULESYNCS = "capsulesyncs.v1alpha1.kubenova.io"


async def reconcile_capsulesync(context: Context, body: dict[str, Any]) -> None:
    peer = CAPSULE
    meta = body["metadata"]
    generation = meta.get("generation")
    installed = await context.kube.has_kind(peer.api_version, peer.kind)
    if installed:
        available = condition(
            "Available",
            True,
            f"{peer.name}Found",
            f"{peer.kind} ({peer.api_version}) is served",
            generation,
        )
        outcome = Outcome.stalled(
            "SyncNotImplemented",
            f"{peer.name} is installed; this Kubenova version reports it but "
            "does not sync to it yet",
        )
    else:
        available = condition(
            "Available", False, peer.missing_reason, peer.missing_message(), generation
        )
        # Not an error of the CapsuleSync's: a human installs Capsule (or not), and
        # the next resync notices.
        outcome = Outcome.stalled(peer.missing_reason, peer.missing_message())
    old = body.get("status") or {}
    status = CapsuleSyncStatus(
        observed_generation=generation,
        conditions=render_conditions(old.get("conditions"), outcome, generation, [available]),
        available=installed,
        api_version=peer.api_version if installed else None,
    )
    # Fields the sync itself will own (the Capsule Tenant, its namespaces) are not
    # written by this release.
    patch = status_patch(
        status, exclude={"last_sync_time", "capsule_tenant", "namespaces", "drift_corrections"}
    )
    if unchanged(old, patch):
        return
    patch["lastSyncTime"] = now().isoformat().replace("+00:00", "Z")
    await context.kube.patch_status(API_VERSION, "CapsuleSync", meta["name"], None, patch)


# A child of its Tenant: a deleted one is rebuilt.
watched_as_child(CAPSULESYNCS, "CapsuleSync")


@level_triggered(CAPSULESYNCS, "capsulesync", resync=True)
async def capsulesync_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await reconcile_capsulesync(context_of(memo), {**body, "kind": "CapsuleSync"})
