"""Project controller: thin handlers that hand the work to the tenant's reconcile.

A Project is built as part of its tenant's pass (see controllers/tenant.py), because
whether it fits depends on the tenant's budget and on the other projects. Only what
needs no tenant is decided here: a Project outside any tenant's owner namespace.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..api.common import API_VERSION
from ..api.tenant import tenant_of_owner_namespace
from ..kube import store
from ..observability.reconcile import reconciler
from .conditions import condition, merge_conditions, same_status
from .context import ctx
from .events import warning
from .teardown import teardown_project
from .tenant import tenant_key

PROJECTS = "projects.v1alpha1.kubenova.io"


def _key(namespace: str, name: str) -> store.Key:
    return ("Project", namespace, name)


async def _report_orphan(body: dict[str, Any], namespace: str) -> None:
    message = (
        f"namespace {namespace!r} is not a tenant's owner namespace: a Project must "
        "be created in '<tenant>-owner' of an existing Tenant"
    )
    generation = body["metadata"].get("generation")
    old = body.get("status") or {}
    status = {
        "observedGeneration": generation,
        "conditions": merge_conditions(
            old.get("conditions"),
            [condition("Ready", False, "TenantNotFound", message, generation)],
        ),
    }
    if not same_status(old, status):
        await ctx().kube.patch_status(
            API_VERSION, "Project", body["metadata"]["name"], namespace, status
        )
        warning(body, "TenantNotFound", message)


@kopf.on.event(PROJECTS)
async def project_event(
    event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> None:
    assert namespace is not None  # Projects are namespaced
    if event.get("type") == "DELETED":
        store.parents.remove(_key(namespace, name))
        tenant = tenant_of_owner_namespace(namespace)
        if tenant and store.parents.get(tenant_key(tenant)):
            # The budget it held goes back to the tenant's apps namespace.
            await ctx().queue.nudge(tenant, "project-deleted")
    else:
        store.parents.upsert(dict(body))


@kopf.on.resume(PROJECTS)
@kopf.on.create(PROJECTS)
@kopf.on.update(PROJECTS)
@reconciler("project")
async def project_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    assert namespace is not None
    store.parents.upsert(dict(body))
    tenant = tenant_of_owner_namespace(namespace)
    if tenant is None or store.parents.get(tenant_key(tenant)) is None:
        await _report_orphan(dict(body), namespace)
        return
    await ctx().queue.run(tenant, "spec")


@kopf.on.delete(PROJECTS)
@reconciler("project-delete")
async def project_deleted(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    assert namespace is not None
    await teardown_project(name, namespace, dict(body))
