"""The one finalizer Kubenova puts on Tenants and Projects, and why.

A Tenant or Project owns namespaces, and namespaces carry no ownerReference (the
garbage collector must never delete a team's workloads), so something has to release
or delete them when their owner goes: that is the teardown, and the finalizer holds the
object until it has run. Nothing else carries a finalizer of Kubenova's.

The finalizer is added by the pass that first builds the object, and removed by the
pass that tears it down, with optimistic concurrency (the object's resourceVersion) so
a concurrent edit is never overwritten. kopf's own finalizer of earlier releases
(`kubenova.io/finalizer`) is removed along with it.
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from .context import Context

FINALIZER = "kubenova.io/teardown"
_LEGACY = ("kubenova.io/finalizer",)


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
