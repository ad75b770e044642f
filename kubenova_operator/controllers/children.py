"""Watches on what Kubenova builds: they keep the store current and heal drift.

A child that is edited or deleted triggers a pass of its tenant, which puts it back
within about a second (or reports it, under driftPolicy Report). Namespaced children
are watched with a server-side label selector (settings in __main__), so the operator
holds only Kubenova's objects in memory; namespaces are watched whole, because a
Project must not take a namespace somebody else already has.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..kube import store
from ..resources import labels as L
from .context import ctx
from .tenant import tenant_key

# (group, version, plural) of each kind Kubenova builds inside namespaces.
CHILD_RESOURCES = (
    ("", "v1", "serviceaccounts"),
    ("", "v1", "resourcequotas"),
    ("", "v1", "limitranges"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)


async def _observe(event: kopf.RawEvent, body: dict[str, Any]) -> None:
    meta = body.get("metadata", {})
    labels = meta.get("labels") or {}
    key = (body.get("kind", ""), meta.get("namespace") or "", meta.get("name", ""))
    previous = store.children.get(key)
    if event.get("type") == "DELETED" or labels.get(L.MANAGED_BY) != L.MANAGER:
        store.children.remove(key)
    else:
        store.children.upsert(body)
    tenant = labels.get(L.TENANT) or (previous or {}).get("metadata", {}).get("labels", {}).get(
        L.TENANT
    )
    if tenant and store.parents.get(tenant_key(tenant)) is not None:
        await ctx().queue.nudge(tenant, "child")


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(event: kopf.RawEvent, body: kopf.Body, name: str, **_: Any) -> None:
    labels = body.get("metadata", {}).get("labels") or {}
    if event.get("type") == "DELETED":
        store.namespace_owners.pop(name, None)
    else:
        store.namespace_owners[name] = (labels.get(L.TENANT), labels.get(L.PROJECT))
    if labels.get(L.MANAGED_BY) == L.MANAGER or store.children.get(("Namespace", "", name)):
        await _observe(event, dict(body))


def _register() -> None:
    for group, version, plural in CHILD_RESOURCES:

        async def child_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
            await _observe(event, dict(body))

        kopf.on.event(group, version, plural, id=f"observe-{plural}")(child_event)


_register()
