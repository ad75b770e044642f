"""Uninstalling Kubenova (`kubectl delete -k manifests/`, or deleting its CRDs) with
tenants present: nothing stuck in Terminating, every tenant's namespaces and workloads
kept, every credential Kubenova issued revoked.

Deleting the CRDs deletes every Tenant and Project; their finalizer
(`kubenova.io/teardown`) would hold them, and the CRDs, until a pass tears them down,
and a teardown is not what an uninstall means (deletionPolicy Delete would delete the
tenants' namespaces). So while the Tenant CRD is being deleted, a pass lets go of each
Tenant and Project being deleted: it deletes the token-binding Secrets of the
tenant's KubeConfigRequests (every token Kubenova issued stops working; the API server
caches a validated token for at most 10 s) and removes the finalizer, and writes
nothing else: namespaces, their workloads, quotas, RoleBindings and labels stay as
they are. docs/uninstall.md says what is left and who can still use it.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.tenant import owner_namespace
from ..credentials.tokens import binding_secret_name
from .context import Context, context_of
from .finalizers import release_finalizer

logger = logging.getLogger(__name__)

# The CRD whose deletion means "Kubenova is being uninstalled".
TENANT_CRD = "tenants.kubenova.io"


@kopf.on.event(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    id="uninstall",
    field="metadata.name",
    value=TENANT_CRD,
)
async def crd_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    context = context_of(memo)
    deleting = event.get("type") == "DELETED" or bool(
        body.get("metadata", {}).get("deletionTimestamp")
    )
    if not deleting and context.uninstalling:
        logger.info("%s is served again: Tenants are torn down as usual again", TENANT_CRD)
        context.uninstalling = False
    if deleting and not context.uninstalling:
        logger.warning(
            "%s is being deleted: Kubenova is being uninstalled; Tenants and Projects are "
            "let go without teardown (namespaces and workloads kept, credentials revoked)",
            TENANT_CRD,
        )
        context.uninstalling = True
        for tenant in context.stores.parents.of_kind("Tenant"):
            context.queue.submit(tenant["metadata"]["name"], "uninstall")


async def let_go(
    context: Context, name: str, body: dict[str, Any] | None, projects: list[dict[str, Any]]
) -> None:
    """The uninstall's pass over tenant `name`: revoke, release; nothing else."""
    deleting = [p for p in projects if p["metadata"].get("deletionTimestamp")]
    if body is not None and body["metadata"].get("deletionTimestamp"):
        deleting.append(body)
    if not deleting:
        return
    await revoke_credentials(context, name)
    for obj in deleting:
        await release_finalizer(context, obj)
    logger.info("tenant %s: let go of %d object(s) for the uninstall", name, len(deleting))


async def revoke_credentials(context: Context, tenant: str) -> None:
    """Delete the token-binding Secrets of the tenant's KubeConfigRequests (by name,
    from the store: the operator may not list Secrets): every token bound to them is
    invalid from then on."""
    namespace = owner_namespace(tenant)
    for request in context.stores.parents.of_kind("KubeConfigRequest"):
        meta = request["metadata"]
        if meta.get("namespace") == namespace:
            await context.kube.delete("v1", "Secret", binding_secret_name(meta["name"]), namespace)
