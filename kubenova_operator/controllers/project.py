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
from ..kube import store
from .context import ctx
from .finalizers import release_finalizer
from .outcome import Outcome
from .tenant import trigger_of, write_project_status

PROJECTS = "projects.v1alpha1.kubenova.io"


def _key(namespace: str, name: str) -> store.Key:
    return ("Project", namespace, name)


@kopf.on.event(PROJECTS)
async def project_event(
    event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> None:
    assert namespace is not None  # Projects are namespaced
    tenant = tenant_of_owner_namespace(namespace)
    if event.get("type") == "DELETED":
        store.parents.remove(_key(namespace, name))
        if tenant:
            # The budget it held goes back to the tenant's apps namespace.
            ctx().queue.submit(tenant, "project-deleted")
        return
    previous = store.parents.get(_key(namespace, name))
    current = {**body, "kind": "Project", "apiVersion": API_VERSION}
    store.parents.upsert(current)
    if tenant is not None:
        ctx().queue.submit(tenant, trigger_of(previous, current))
        return
    # Not in any tenant's owner namespace: no tenant pass will ever look at it.
    if current["metadata"].get("deletionTimestamp"):
        await release_finalizer(current)
        return
    await write_project_status(
        current,
        Outcome.stalled(
            "TenantNotFound",
            f"namespace {namespace!r} is not a tenant's owner namespace: a Project must "
            "be created in '<tenant>-owner' of an existing Tenant",
        ),
        tenant=None,
    )
