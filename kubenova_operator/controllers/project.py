"""Project controller: a thin handler that hands the work to the tenant's pass.

A Project is built, reported and torn down as part of its tenant's pass (see
controllers/tenant.py), because whether it fits depends on the tenant's budget and on
the other projects. Only what needs no tenant is decided here: a Project outside any
tenant's owner namespace.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..api.common import API_VERSION
from ..api.tenant import tenant_of_owner_namespace
from ..kube.store import Key
from .context import context_of
from .finalizers import release_finalizer
from .outcome import Outcome
from .tenant import trigger_of, write_project_status

PROJECTS = "projects.v1alpha1.kubenova.io"


def _key(namespace: str, name: str) -> Key:
    return ("Project", namespace, name)


@kopf.on.event(PROJECTS)
async def project_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    assert namespace is not None  # Projects are namespaced
    context = context_of(memo)
    tenant = tenant_of_owner_namespace(namespace)
    if event.get("type") == "DELETED":
        context.stores.parents.remove(_key(namespace, name))
        if tenant:
            # The budget it held goes back to the tenant's apps namespace.
            context.queue.submit(tenant, "project-deleted")
        return
    if (
        tenant is not None
        and context.stores.parents.holds(_key(namespace, name), dict(body))
        and context.queue.knows(tenant)
    ):
        return  # the echo of our own status or finalizer write: nothing new
    previous = context.stores.parents.get(_key(namespace, name))
    current = {**body, "kind": "Project", "apiVersion": API_VERSION}
    context.stores.parents.upsert(current)
    if tenant is not None:
        context.queue.submit(tenant, trigger_of(previous, current))
        return
    # Not in any tenant's owner namespace: no tenant pass will ever look at it.
    if not context.leading.is_set():
        return  # only the leader writes (it saw this event too)
    if current["metadata"].get("deletionTimestamp"):
        await release_finalizer(context, current)
        return
    await write_project_status(
        context,
        current,
        Outcome.stalled(
            "TenantNotFound",
            f"namespace {namespace!r} is not a tenant's owner namespace: a Project must "
            "be created in '<tenant>-owner' of an existing Tenant",
        ),
        tenant=None,
    )
