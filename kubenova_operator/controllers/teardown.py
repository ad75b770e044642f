"""Deleting Tenants and Projects without losing anything by surprise.

- A Tenant that still has Projects is held (its finalizer stays) with a Ready=False
  `DeletionBlocked` condition naming them (controllers/tenant.py): deleting a tenant
  never cascades into its projects' namespaces behind a user's back.
- deletionPolicy Retain (default): namespaces and everything in them stay; Kubenova's
  identity labels are removed so nothing heals or selects them any more, and the
  namespace records which tenant released it (a Tenant of that name created again
  takes it back).
- deletionPolicy Delete: the namespaces are deleted (their content with them).
Namespaces never get ownerReferences, so nothing but this code deletes them, and it
only touches namespaces created for the tenant being torn down (their tenant-uid
annotation): a namespace somebody labelled by hand is never released or deleted.

Teardown lists from the API server rather than the in-memory store: deletions are rare
and must be complete even right after an operator restart.
"""

from __future__ import annotations

import logging
from typing import Any

from ..api.common import API_VERSION
from ..api.project import Project
from ..api.tenant import Tenant
from ..kube.kinds import labelled
from ..resources import labels as L
from ..resources.namespaces import release_patch
from ..resources.ownership import NamespaceRecord, is_owned
from .context import Context

logger = logging.getLogger(__name__)


async def _teardown_children(
    context: Context, selector: str, *, tenant_uid: str, delete: bool
) -> None:
    """Release or delete the children matching `selector` that are not namespaces.
    Credentials and cluster-wide grants never outlive what they were for: kinds
    declared deleted_on_retain (kube/kinds.py) are deleted whatever the policy."""
    kube = context.kube
    for child in labelled(kubevela=context.kubevela):
        for obj in await kube.list(child.api_version, child.kind, label_selector=selector):
            meta = obj["metadata"]
            name, home = meta["name"], meta.get("namespace")
            if home and not is_owned(context.stores.namespaces.get(home), tenant_uid):
                continue  # labelled by somebody else, in a namespace not the tenant's
            if delete or child.deleted_on_retain:
                await kube.delete(child.api_version, child.kind, name, home)
            else:
                await kube.merge_patch(child.api_version, child.kind, name, home, release_patch())


async def _teardown(
    context: Context, selector: str, *, tenant: str, tenant_uid: str, delete: bool
) -> int:
    """Release or delete everything matching `selector`; return how many namespaces."""
    kube = context.kube
    namespaces = [
        ns
        for ns in await kube.list("v1", "Namespace", label_selector=selector)
        if is_owned(NamespaceRecord.of(ns), tenant_uid)
    ]
    await _teardown_children(context, selector, tenant_uid=tenant_uid, delete=delete)
    # Credentials never outlive what they were for.
    for request in await kube.list(API_VERSION, "KubeConfigRequest", label_selector=selector):
        meta = request["metadata"]
        await kube.delete(API_VERSION, "KubeConfigRequest", meta["name"], meta["namespace"])
    for ns in namespaces:
        name = ns["metadata"]["name"]
        if delete:
            await kube.delete("v1", "Namespace", name)
        else:
            released = await kube.merge_patch("v1", "Namespace", name, None, release_patch(tenant))
            context.stores.namespaces[name] = NamespaceRecord.of(released)
    return len(namespaces)


async def teardown_tenant(context: Context, name: str, body: dict[str, Any]) -> None:
    tenant = Tenant.model_validate(body)
    delete = tenant.spec.deletion_policy == "Delete"
    selector = f"{L.MANAGED_SELECTOR},{L.TENANT}={name}"
    count = await _teardown(
        context, selector, tenant=name, tenant_uid=str(body["metadata"]["uid"]), delete=delete
    )
    logger.info(
        "tenant %s deleted: %d namespaces %s", name, count, "deleted" if delete else "retained"
    )


async def teardown_project(context: Context, body: dict[str, Any], tenant_uid: str) -> None:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    tenant = (body.get("status") or {}).get("tenant") or namespace.removesuffix("-owner")
    project = Project.model_validate(body)
    delete = project.spec.deletion_policy == "Delete"
    selector = f"{L.MANAGED_SELECTOR},{L.TENANT}={tenant},{L.PROJECT}={name}"
    count = await _teardown(context, selector, tenant=tenant, tenant_uid=tenant_uid, delete=delete)
    logger.info(
        "project %s/%s deleted: %d namespaces %s",
        tenant,
        name,
        count,
        "deleted" if delete else "retained",
    )
