"""Watches on what Kubenova builds: they keep the store current and heal drift.

A child that is edited or deleted triggers a pass of its tenant, which puts it back
within about a second (or reports it, under driftPolicy Report). Namespaced children
are watched with a server-side label selector (settings in __main__), so the operator
holds only Kubenova's objects in memory; namespaces are watched whole, because a
Project must not take a namespace somebody else already has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic.exceptions import ResourceNotFoundError

from ..api.common import API_VERSION
from ..api.tenant import tenant_of_owner_namespace
from ..integrations.kubevela import APPLICATION_API
from ..kube.diff import describe
from ..kube.kinds import NAMESPACE, REGISTRY, labelled
from ..kube.store import list_started
from ..resources import labels as L
from ..resources.ownership import NamespaceRecord
from .conditions import find
from .context import Context, context_of
from .outcome import is_terminal
from .scheduler import Periodic, Slice
from .tenant import tenant_key

logger = logging.getLogger(__name__)
PRIME_PATIENCE_SECONDS = 60.0


async def observe_child(context: Context, event: kopf.RawEvent, body: dict[str, Any]) -> None:
    """Keep the store current for one watched object and, when it is Kubenova's (or
    just stopped being), have its tenant re-checked: that is what heals drift."""
    meta = body.get("metadata", {})
    labels = meta.get("labels") or {}
    key = (body.get("kind", ""), meta.get("namespace") or "", meta.get("name", ""))
    previous = context.stores.children.get(key)
    tenant = labels.get(L.TENANT) or (previous or {}).get("metadata", {}).get("labels", {}).get(
        L.TENANT
    )
    if (
        event.get("type") != "DELETED"
        and context.stores.children.holds(key, body)
        and context.queue.knows(tenant or "")
    ):
        # The echo of a write the store recorded from its answer (or a late event),
        # of a tenant that has had its passes since start-up: nothing new to look at.
        return
    if event.get("type") == "DELETED":
        # A late event about an object since re-created (a heal) must not remove the
        # new one: only the same uid goes.
        if previous is not None and previous["metadata"].get("uid") == meta.get("uid"):
            context.stores.children.remove(key)
    elif labels.get(L.MANAGED_BY) != L.MANAGER:
        context.stores.children.remove(key)
    else:
        context.stores.children.upsert(body)
    if tenant and context.stores.parents.get(tenant_key(tenant)) is not None:
        context.queue.submit(tenant, "child")


@kopf.on.event(NAMESPACE.group, NAMESPACE.version, NAMESPACE.plural)
async def namespace_event(
    event: kopf.RawEvent, body: kopf.Body, name: str, memo: kopf.Memo, **_: Any
) -> None:
    context = context_of(memo)
    _start_relisting(context)
    labels = body.get("metadata", {}).get("labels") or {}
    if event.get("type") == "DELETED":
        context.stores.namespaces.pop(name, None)
        _recheck_conflicts(context, name)
    else:
        context.stores.namespaces[name] = NamespaceRecord.of(body)
    if labels.get(L.MANAGED_BY) == L.MANAGER or context.stores.children.get(
        ("Namespace", "", name)
    ):
        await observe_child(context, event, dict(body))


def _recheck_conflicts(context: Context, namespace: str) -> None:
    """A namespace that was in a Tenant's or Project's way is gone: their tenants get
    a pass now (a Stalled object waits for exactly this kind of change)."""
    quoted = repr(namespace)
    for parent in (
        *context.stores.parents.of_kind("Tenant"),
        *context.stores.parents.of_kind("Project"),
    ):
        ready = find((parent.get("status") or {}).get("conditions"), "Ready") or {}
        if ready.get("reason") == "NamespaceConflict" and quoted in ready.get("message", ""):
            meta = parent["metadata"]
            tenant = (
                tenant_of_owner_namespace(meta["namespace"])
                if meta.get("namespace")
                else meta["name"]
            )
            if tenant:
                context.queue.submit(tenant, "namespace-freed")


async def _list_when_served(
    context: Context, api_version: str, kind: str, **selector: str
) -> list[dict[str, Any]]:
    """LIST, waiting out what a just-started API server or a just-installed CRD
    answers for a few seconds (429 "storage is (re)initializing", 503, and discovery
    not listing the CRDs' kinds yet: a restarted API server publishes them last)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PRIME_PATIENCE_SECONDS
    while True:
        try:
            return await context.kube.list(api_version, kind, **selector)
        except ResourceNotFoundError as exc:
            if loop.time() > deadline:
                raise
            logger.info("listing %s: %s; trying again", kind, exc)
            await asyncio.sleep(1.0)
        except ApiException as exc:
            if is_terminal(exc) or loop.time() > deadline:
                raise
            logger.info("listing %s: %s; trying again", kind, exc.reason)
            await asyncio.sleep(0.5)


async def prime_stores(context: Context) -> None:
    """Fill the stores with one LIST per kind before the first reconcile.

    kopf lists and watches each kind independently, so without this a tenant could be
    reconciled before its Projects are known, and its apps namespace would briefly get
    the whole budget. Primed, the first pass after a restart finds everything in place
    and writes nothing.
    """
    # KubeConfigRequests too: a tenant's pass binds the identities of the live ones, and
    # one that did not know them yet would unbind them (and prune their ServiceAccounts,
    # which invalidates every token issued for them) until their watch events arrive.
    for kind in ("Tenant", "Project", "KubeConfigRequest"):
        for obj in await _list_when_served(context, API_VERSION, kind):
            context.stores.parents.upsert({**obj, "kind": kind, "apiVersion": API_VERSION})
    for ns in await _list_when_served(context, "v1", "Namespace"):
        labels = ns["metadata"].get("labels") or {}
        context.stores.namespaces[ns["metadata"]["name"]] = NamespaceRecord.of(ns)
        if labels.get(L.MANAGED_BY) == L.MANAGER:
            context.stores.children.upsert({**ns, "kind": "Namespace", "apiVersion": "v1"})
    for api_version, kind in _watched_kinds(context):
        for obj in await _list_when_served(
            context, api_version, kind, label_selector=L.MANAGED_SELECTOR
        ):
            context.stores.children.upsert({**obj, "kind": kind, "apiVersion": api_version})
    if context.kubevela:
        # Applications in project namespaces, so the first VelaSync passes count them
        # all rather than those whose watch events happened to arrive first.
        for app in await _list_when_served(context, APPLICATION_API, "Application"):
            record = context.stores.namespaces.get(app["metadata"]["namespace"])
            if record is not None and record.project:
                context.stores.keep_application(app)


def _watched_kinds(context: Context) -> tuple[tuple[str, str], ...]:
    """What is watched and listed by Kubenova's label: the children that are not
    namespaces, and Kubenova's own kinds a pass builds."""
    return (
        *((child.api_version, child.kind) for child in labelled(kubevela=context.kubevela)),
        (API_VERSION, "KubeConfigRequest"),
        (API_VERSION, "CapsuleSync"),
        (API_VERSION, "VelaSync"),
    )


async def relist_children(context: Context) -> None:
    """What an informer's relist does: compare the store with a fresh LIST of every
    kind Kubenova builds, forget what is gone, and have its tenants re-checked (which
    rebuilds it). A deletion while no watch is running (between start-up and the
    watches' first LIST, or across a reconnect) sends no event; this is what heals it."""
    kube = context.kube
    tenants: set[str] = set()
    for api_version, kind in ((NAMESPACE.api_version, NAMESPACE.kind), *_watched_kinds(context)):
        started = list_started()
        listed = await kube.list(api_version, kind, label_selector=L.MANAGED_SELECTOR)
        keys = {(kind, o["metadata"].get("namespace") or "", o["metadata"]["name"]) for o in listed}
        for key in context.stores.children.stale(kind, keys, before=started):
            held = context.stores.children.get(key) or {}
            tenant = held.get("metadata", {}).get("labels", {}).get(L.TENANT)
            logger.info("%s was deleted unseen; forgetting it", describe(key))
            context.stores.children.remove(key)
            if tenant:
                tenants.add(tenant)
    for tenant in sorted(tenants):
        if context.stores.parents.get(tenant_key(tenant)) is not None:
            context.queue.submit(tenant, "relist")


def _start_relisting(context: Context) -> None:
    """Start the scheduler's periodic loop once, from the first namespace event: the
    watches are starting then, and a task started from a kopf handler can post Events
    (kopf's posting queue lives in context variables that start-up handlers do not
    have)."""
    context.scheduler.start(context, RESYNCS, RELISTS)


def resync_tenants(context: Context, keys: Slice) -> None:
    """Every tenant (of this slice) gets a pass from the store (no API reads: it finds
    what events could not, such as a quota's usage to sum)."""
    for tenant in sorted(t["metadata"]["name"] for t in context.stores.parents.of_kind("Tenant")):
        if tenant in keys:
            context.queue.submit(tenant, "timer")


# What the scheduler runs every resync and every relist (controllers/scheduler.py);
# other controllers add theirs.
RESYNCS: list[Periodic] = [resync_tenants]
RELISTS: list[Callable[[Context], Awaitable[None]]] = [relist_children]


def _register() -> None:
    # KubeVela's kinds too: kopf starts their watches when the CRDs appear. Namespaces
    # have their own handler (namespace_event).
    for child in REGISTRY:
        if not child.watched_by_label:
            continue

        async def child_event(
            event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
        ) -> None:
            await observe_child(context_of(memo), event, dict(body))

        kopf.on.event(child.group, child.version, child.plural, id=f"observe-{child.plural}")(
            child_event
        )


_register()
