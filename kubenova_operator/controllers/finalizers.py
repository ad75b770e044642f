"""The one finalizer Kubenova puts on Tenants and Projects, and why.

A Tenant or Project owns namespaces, and namespaces carry no ownerReference (the
garbage collector must never delete a team's workloads), so something has to release
or delete them when their owner goes: that is the teardown, and the finalizer holds the
object until it has run. Nothing else carries a finalizer of Kubenova's: what a
KubeConfigRequest, CapsuleSync or VelaSync makes is removed by the garbage collector
through ownerReferences, so deleting them completes with or without the operator.

The finalizer is added by the pass that first builds the object, and removed by the
pass that tears it down, with optimistic concurrency (the object's resourceVersion) so
a concurrent edit is never overwritten. kopf's own finalizer of earlier releases
(`kubenova.io/finalizer`) is removed along with it.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from .context import Context

logger = logging.getLogger(__name__)

FINALIZER = "kubenova.io/teardown"
# kopf's finalizer as earlier releases configured it: put on every object that had a
# kopf timer (KubeConfigRequests, CapsuleSyncs, VelaSyncs) and on Tenants and Projects.
KOPF_FINALIZER = "kubenova.io/finalizer"
_LEGACY = (KOPF_FINALIZER,)
# kopf's record of the last spec it handled (earlier releases' on.update handlers).
KOPF_DIFFBASE = "kubenova.io/last-handled-configuration"


async def _set_finalizers(context: Context, body: dict[str, Any], finalizers: list[str]) -> None:
    meta = body["metadata"]
    patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
    try:
        updated = await context.kube.merge_patch(
            body["apiVersion"], body["kind"], meta["name"], meta.get("namespace"), patch
        )
    except ApiException as exc:
        if exc.status == 404:
            return  # gone already: its DELETED event brings the next pass
        raise
    context.stores.parents.upsert(
        {**updated, "kind": body["kind"], "apiVersion": body["apiVersion"]}
    )


async def ensure_finalizer(context: Context, body: dict[str, Any]) -> None:
    finalizers = list(body["metadata"].get("finalizers") or [])
    if FINALIZER not in finalizers:
        await _set_finalizers(context, body, [*finalizers, FINALIZER])


async def release_finalizer(context: Context, body: dict[str, Any]) -> None:
    finalizers = list(body["metadata"].get("finalizers") or [])
    kept = [f for f in finalizers if f != FINALIZER and f not in _LEGACY]
    if kept != finalizers:
        await _set_finalizers(context, body, kept)


async def drop_kopf_leftovers(context: Context, body: dict[str, Any]) -> bool:
    """Remove what kopf's handlers of earlier releases left on an object that needs no
    finalizer: kopf's finalizer (else deleting it would hang forever now that no kopf
    handler removes it) and its last-handled-configuration annotation (harmless, but
    stale). Return whether a patch was sent (its watch event follows)."""
    meta = body.get("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    annotations = meta.get("annotations") or {}
    if KOPF_FINALIZER not in finalizers and KOPF_DIFFBASE not in annotations:
        return False
    if not context.leading.is_set():
        return False  # only the leader writes (and, once it leads, resyncs everything)
    patch: dict[str, Any] = {"metadata": {"resourceVersion": meta["resourceVersion"]}}
    if KOPF_FINALIZER in finalizers:
        patch["metadata"]["finalizers"] = [f for f in finalizers if f != KOPF_FINALIZER]
    if KOPF_DIFFBASE in annotations:
        patch["metadata"]["annotations"] = {KOPF_DIFFBASE: None}
    try:
        await context.kube.merge_patch(
            body["apiVersion"], body["kind"], meta["name"], meta.get("namespace"), patch
        )
    except ApiException as exc:
        if exc.status == 409:
            return True  # changed since: its next event (already on its way) tries again
        if exc.status != 404:  # (404: gone; its DELETED event follows)
            logger.warning("could not remove kopf's finalizer from %s: %s", meta["name"], exc)
        return False
    logger.info("removed kopf's leftovers from %s %s", body["kind"], meta["name"])
    return True
