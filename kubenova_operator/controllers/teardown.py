"""Deleting Tenants and Projects without losing anything by surprise.

- A Tenant that still has Projects is held (its finalizer stays) with a Ready=False
  `DeletionBlocked` condition naming them: deleting a tenant never cascades into its
  projects' namespaces behind a user's back.
- deletionPolicy Retain (default): namespaces and everything in them stay; Kubenova's
  identity labels are removed so nothing heals or selects them any more.
- deletionPolicy Delete: the namespaces are deleted (their content with them).
Namespaces never get ownerReferences, so nothing but this code deletes them.

Teardown lists from the API server rather than the in-memory store: deletions are rare
and must be complete even right after an operator restart.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.common import API_VERSION
from ..api.project import Project
from ..api.tenant import Tenant, owner_namespace
from ..kube import store
from ..kube.kinds import child_kinds
from ..resources import labels as L
from ..resources.namespaces import release_patch
from . import events
from .conditions import condition, merge_conditions
from .context import ctx

logger = logging.getLogger(__name__)
# Credentials and cluster-wide grants never outlive what they were for: deleting the
# ServiceAccounts invalidates every token issued for them, whatever the policy.
ALWAYS_DELETED = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")


async def _teardown(selector: str, delete_namespaces: bool) -> int:
    """Release or delete everything matching `selector`; return how many namespaces."""
    kube = ctx().kube
    for api_version, kind in child_kinds(ctx().kubevela):
        for obj in await kube.list(api_version, kind, label_selector=selector):
            meta = obj["metadata"]
            if delete_namespaces or kind in ALWAYS_DELETED:
                await kube.delete(api_version, kind, meta["name"], meta.get("namespace"))
            else:
                await kube.merge_patch(
                    api_version, kind, meta["name"], meta.get("namespace"), release_patch()
                )
    # Credentials never outlive what they were for.
    for request in await kube.list(API_VERSION, "KubeConfigRequest", label_selector=selector):
        meta = request["metadata"]
        await kube.delete(API_VERSION, "KubeConfigRequest", meta["name"], meta["namespace"])
    namespaces = await kube.list("v1", "Namespace", label_selector=selector)
    for ns in namespaces:
        if delete_namespaces:
            await kube.delete("v1", "Namespace", ns["metadata"]["name"])
        else:
            await kube.merge_patch("v1", "Namespace", ns["metadata"]["name"], None, release_patch())
    return len(namespaces)


async def teardown_tenant(name: str, body: dict[str, Any]) -> None:
    store.parents.upsert(body)  # marks it deleting: reconciles skip it from now on
    namespace = owner_namespace(name)
    remaining = sorted(
        p["metadata"]["name"]
        for p in await ctx().kube.list(API_VERSION, "Project", namespace=namespace)
    )
    if remaining:
        message = (
            f"waiting for {len(remaining)} Project(s) to be deleted first: "
            f"{', '.join(remaining[:10])}"
        )
        old = body.get("status") or {}
        status = {
            "phase": "Terminating",
            "conditions": merge_conditions(
                old.get("conditions"),
                [
                    condition(
                        "Ready",
                        False,
                        "DeletionBlocked",
                        message,
                        body["metadata"].get("generation"),
                    )
                ],
            ),
        }
        if old.get("conditions") != status["conditions"] or old.get("phase") != "Terminating":
            await ctx().kube.patch_status(API_VERSION, "Tenant", name, None, status)
            events.warning(body, "DeletionBlocked", message)
        raise kopf.TemporaryError(message, delay=5)
    tenant = Tenant.model_validate(body)
    delete = tenant.spec.deletion_policy == "Delete"
    selector = f"{L.MANAGED_SELECTOR},{L.TENANT}={name}"
    count = await _teardown(selector, delete)
    logger.info(
        "tenant %s deleted: %d namespaces %s", name, count, "deleted" if delete else "retained"
    )
    ctx().queue.forget(name)


async def teardown_project(name: str, namespace: str, body: dict[str, Any]) -> None:
    store.parents.upsert(body)
    tenant = body.get("status", {}).get("tenant") or namespace.removesuffix("-owner")
    project = Project.model_validate(body)
    delete = project.spec.deletion_policy == "Delete"
    selector = f"{L.MANAGED_SELECTOR},{L.TENANT}={tenant},{L.PROJECT}={name}"
    count = await _teardown(selector, delete)
    logger.info(
        "project %s/%s deleted: %d namespaces %s",
        tenant,
        name,
        count,
        "deleted" if delete else "retained",
    )
