"""CapsuleSync and VelaSync controllers: what Capsule and KubeVela see of a tenant and
a project. For now they report whether the peer is installed (discovery, re-checked on
every resync, so an installation is noticed without a restart); syncing into Capsule
and KubeVela builds on this."""

from __future__ import annotations

from typing import Any

import kopf

from ..api.common import API_VERSION, now
from ..config import get_settings
from ..integrations import CAPSULE, KUBEVELA, Peer
from ..observability.reconcile import reconciler
from .children import observe_child
from .conditions import condition, merge_conditions, same_status
from .context import ctx

CAPSULESYNCS = "capsulesyncs.v1alpha1.kubenova.io"
VELASYNCS = "velasyncs.v1alpha1.kubenova.io"
PEERS = {"CapsuleSync": CAPSULE, "VelaSync": KUBEVELA}


async def reconcile_sync(body: dict[str, Any]) -> None:
    peer: Peer = PEERS[body["kind"]]
    meta = body["metadata"]
    generation = meta.get("generation")
    installed = await ctx().kube.has_kind(peer.api_version, peer.kind)
    if installed:
        available = condition(
            "Available",
            True,
            f"{peer.name}Found",
            f"{peer.kind} ({peer.api_version}) is served",
            generation,
        )
        ready = condition(
            "Ready",
            False,
            "SyncNotImplemented",
            f"{peer.name} is installed; this Kubenova version reports it but "
            "does not sync to it yet",
            generation,
        )
    else:
        available = condition(
            "Available", False, peer.missing_reason, peer.missing_message(), generation
        )
        ready = condition("Ready", False, peer.missing_reason, peer.missing_message(), generation)
    old = body.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "available": installed,
        "conditions": merge_conditions(old.get("conditions"), [available, ready]),
    }
    if installed and body["kind"] == "CapsuleSync":
        status["apiVersion"] = peer.api_version
    if same_status(old, status):
        return
    status["lastSyncTime"] = now().isoformat().replace("+00:00", "Z")
    await ctx().kube.patch_status(
        API_VERSION, body["kind"], meta["name"], meta.get("namespace"), status
    )


def _register(resource: str, kind: str) -> None:
    async def observe(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        # Children of their Tenant/Project: a deleted one is rebuilt.
        await observe_child(event, {**body, "kind": kind})

    async def changed(body: kopf.Body, **_: Any) -> None:
        await reconcile_sync({**body, "kind": kind})

    kopf.on.event(resource, id=f"observe-{kind}")(observe)
    handler = reconciler(kind.lower())(changed)
    kopf.on.resume(resource, id=f"{kind}-resume")(handler)
    kopf.on.create(resource, id=f"{kind}-create")(handler)
    kopf.on.update(resource, id=f"{kind}-update")(handler)
    interval = get_settings().resync_seconds
    kopf.timer(resource, interval=interval, initial_delay=interval, id=f"{kind}-resync")(handler)


_register(CAPSULESYNCS, "CapsuleSync")
_register(VELASYNCS, "VelaSync")
