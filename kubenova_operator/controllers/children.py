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

from ..api.common import API_VERSION
from ..integrations.kubevela import APPLICATION_API
from ..kube import store
from ..kube.kinds import CHILD_RESOURCES, VELA_CHILD_RESOURCES, child_kinds
from ..resources import labels as L
from .context import ctx
from .tenant import tenant_key


async def observe_child(event: kopf.RawEvent, body: dict[str, Any]) -> None:
    """Keep the store current for one watched object and, when it is Kubenova's (or
    just stopped being), have its tenant re-checked: that is what heals drift."""
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
        await observe_child(event, dict(body))


async def prime_stores() -> None:
    """Fill the stores with one LIST per kind before the first reconcile.

    kopf lists and watches each kind independently, so without this a tenant could be
    reconciled before its Projects are known, and its apps namespace would briefly get
    the whole budget. Primed, the first pass after a restart finds everything in place
    and writes nothing.
    """
    kube = ctx().kube
    for kind in ("Tenant", "Project"):
        for obj in await kube.list(API_VERSION, kind):
            store.parents.upsert({**obj, "kind": kind, "apiVersion": API_VERSION})
    for ns in await kube.list("v1", "Namespace"):
        labels = ns["metadata"].get("labels") or {}
        store.namespace_owners[ns["metadata"]["name"]] = (
            labels.get(L.TENANT),
            labels.get(L.PROJECT),
        )
        if labels.get(L.MANAGED_BY) == L.MANAGER:
            store.children.upsert({**ns, "kind": "Namespace", "apiVersion": "v1"})
    for api_version, kind in (
        *child_kinds(ctx().kubevela),
        (API_VERSION, "KubeConfigRequest"),
        (API_VERSION, "CapsuleSync"),
        (API_VERSION, "VelaSync"),
    ):
        for obj in await kube.list(api_version, kind, label_selector=L.MANAGED_SELECTOR):
            store.children.upsert({**obj, "kind": kind, "apiVersion": api_version})
    if ctx().kubevela:
        # Applications in project namespaces, so the first VelaSync passes count them
        # all rather than those whose watch events happened to arrive first.
        for app in await kube.list(APPLICATION_API, "Application"):
            owner = store.namespace_owners.get(app["metadata"]["namespace"], (None, None))
            if owner[1]:
                store.keep_application(app)


def _register() -> None:
    # KubeVela's kinds too: kopf starts their watches when the CRDs appear.
    for group, version, plural in (*CHILD_RESOURCES, *VELA_CHILD_RESOURCES):

        async def child_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
            await observe_child(event, dict(body))

        kopf.on.event(group, version, plural, id=f"observe-{plural}")(child_event)


_register()
