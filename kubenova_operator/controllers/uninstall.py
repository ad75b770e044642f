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

`kubectl delete -k manifests/` deletes the CRDs, the operator's RBAC, its
ServiceAccount and its Deployment in the same second, so the let-go would race the
loss of the operator's own access. While there are tenants, the operator therefore
keeps the access the let-go needs:

- authorization: a ClusterRole and binding of its own that are not in the manifests
  (resources/uninstall.py), owned by the operator's Namespace, so the garbage
  collector removes them only once that namespace is gone;
- authentication: its ServiceAccount carries a finalizer per replica,
  `kubenova.io/uninstall-<pod>`, so the namespace (which waits for its contents)
  stays, and the API server accepts the deleted ServiceAccount's tokens for its JWT
  leeway (60 s).

Each replica removes its hold once it has let go of every Tenant (the Tenant CRD is
gone), when no tenant is left, whenever it shuts down (after finishing the let-go if
an uninstall is under way), and at `ACCESS_DEADLINE` into an uninstall whatever is
left; that removal is its last request. (Holding the manifests' ClusterRole and
binding instead cannot work: taking the hold off either ends the authorization the
next release needs.) With no tenants nothing is held, so removing an operator that
manages nothing never waits.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from ..api.tenant import owner_namespace
from ..credentials.tokens import binding_secret_name
from ..kube.client import in_cluster
from ..resources.uninstall import uninstall_access
from .context import Context, context_of
from .finalizers import release_finalizer

logger = logging.getLogger(__name__)

# The CRD whose deletion means "Kubenova is being uninstalled".
TENANT_CRD = "tenants.kubenova.io"
# The finalizers on the operator's own access while it has tenants to let go of:
# `kubenova.io/uninstall-<pod>`, one per replica (hold_of).
HOLD_PREFIX = "kubenova.io/uninstall-"
# Seconds after an uninstall begins when the hold is given up whatever is left: the
# API server stops accepting the deleted ServiceAccount's tokens 60 s after deletion.
ACCESS_DEADLINE = 45.0


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
        context.uninstall_began = time.monotonic()
        # At the deadline every remaining tenant's pass gives the hold up (let_go).
        context.scheduler.at("uninstall-deadline", "", ACCESS_DEADLINE, lambda: _resubmit(context))
    if event.get("type") == "DELETED":
        # Every Tenant was let go (the CRD waits for its objects): nothing left to hold.
        context.scheduler.cancel("uninstall-deadline", "")
        await release_access(context, f"{TENANT_CRD} is gone", everyone=True)


def _resubmit(context: Context) -> None:
    for tenant in context.stores.parents.of_kind("Tenant"):
        context.queue.submit(tenant["metadata"]["name"], "uninstall-deadline")


async def let_go(
    context: Context, name: str, body: dict[str, Any] | None, projects: list[dict[str, Any]]
) -> None:
    """The uninstall's pass over tenant `name`: revoke, release; nothing else."""
    deleting = [p for p in projects if p["metadata"].get("deletionTimestamp")]
    if body is not None and body["metadata"].get("deletionTimestamp"):
        deleting.append(body)
    if deleting:
        await revoke_credentials(context, name)
        for obj in deleting:
            await release_finalizer(context, obj)
        logger.info("tenant %s: let go of %d object(s) for the uninstall", name, len(deleting))
    if time.monotonic() - context.uninstall_began > ACCESS_DEADLINE:
        await release_access(context, f"{ACCESS_DEADLINE:.0f} s into the uninstall", everyone=True)


async def revoke_credentials(context: Context, tenant: str) -> None:
    """Delete the token-binding Secrets of the tenant's KubeConfigRequests (by name,
    from the store: the operator may not list Secrets): every token bound to them is
    invalid from then on."""
    namespace = owner_namespace(tenant)
    for request in context.stores.parents.of_kind("KubeConfigRequest"):
        meta = request["metadata"]
        if meta.get("namespace") == namespace:
            await context.kube.delete("v1", "Secret", binding_secret_name(meta["name"]), namespace)


def hold_of(pod_name: str) -> str:
    """This replica's finalizer: one per replica, so a replica leaving in a rolling
    update takes its own hold off and not the one its successor put on."""
    name = pod_name.lower()
    # (a finalizer's name part is at most 63 characters of a restricted alphabet)
    if len(name) > 53 or not re.fullmatch(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?", name):
        name = hashlib.sha256(pod_name.encode()).hexdigest()[:16]
    return f"{HOLD_PREFIX}{name}"


async def hold_access(context: Context) -> None:
    """Grant the let-go its own access (resources/uninstall.py) and put this replica's
    hold on the ServiceAccount (once; a no-op while held). Without that access the
    hold would keep nothing working, so a failure to grant it skips the hold."""
    if context.access_held or context.uninstalling:
        return
    if time.monotonic() < context.hold_retry_at:
        return  # (it failed a moment ago: not a GET per pass)
    context.hold_retry_at = time.monotonic() + context.settings.resync_seconds
    settings = context.settings
    try:
        namespace = await context.kube.get("v1", "Namespace", settings.namespace)
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return
        for obj in uninstall_access(
            settings.namespace, namespace["metadata"]["uid"], settings.service_account
        ):
            await context.kube.apply(obj)
    except ApiException as exc:
        logger.warning("could not grant the uninstall its access: %s", exc.reason)
        return
    await _set_hold(context, held=True)
    context.access_held = True
    context.hold_retry_at = 0.0


async def release_access(context: Context, why: str, *, everyone: bool = False) -> None:
    """Take this replica's hold (`everyone`: every replica's, a replica killed with
    -9 included) off its ServiceAccount: the API server may now delete it, and with
    it the operator's namespace and the let-go's access."""
    if context.access_held is False and not everyone:
        return
    await _set_hold(context, held=False, everyone=everyone)
    if context.access_held:
        logger.info("released the hold on the operator's ServiceAccount: %s", why)
    context.access_held = False


async def _departed(context: Context, holds: list[str]) -> set[str]:
    """The holds of replicas that are gone (a pod deleted with --force, a node lost):
    only known in a cluster, from the pods in the operator's namespace."""
    others = [h for h in holds if h != hold_of(context.settings.pod_name)]
    if not others or not in_cluster():
        return set()
    pods = await context.kube.list("v1", "Pod", context.settings.namespace)
    alive = {hold_of(p["metadata"]["name"]) for p in pods}
    return {h for h in others if h not in alive}


async def _set_hold(context: Context, *, held: bool, everyone: bool = False) -> None:
    """Add or remove this replica's hold (adding, also drop those of departed
    replicas; with `everyone`, remove every replica's: the let-go is over, or has
    nothing left to do, and no replica needs the access any more),
    by merge patch at the resourceVersion read: the finalizer list is replaced whole,
    so a concurrent writer's change must not be lost (a conflict reads again).
    Missing objects (an operator run from a laptop with somebody else's credentials)
    and refusals are logged, not fatal: the hold is a courtesy to an uninstall, never
    a reason not to reconcile."""
    mine = hold_of(context.settings.pod_name)
    api_version, kind = "v1", "ServiceAccount"
    name, namespace = context.settings.service_account, context.settings.namespace
    for _ in range(5):
        try:
            obj = await context.kube.get(api_version, kind, name, namespace)
            if obj is None:
                return
            meta = obj["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            if held:
                if meta.get("deletionTimestamp"):
                    return  # too late to hold what is being deleted
                gone = await _departed(
                    context, [f for f in finalizers if f.startswith(HOLD_PREFIX)]
                )
                wanted = [f for f in finalizers if f not in gone]
                wanted += [] if mine in wanted else [mine]
            else:
                wanted = [
                    f
                    for f in finalizers
                    if f != mine and not (everyone and f.startswith(HOLD_PREFIX))
                ]
            if wanted == finalizers:
                return
            await context.kube.merge_patch(
                api_version,
                kind,
                name,
                namespace,
                {"metadata": {"finalizers": wanted, "resourceVersion": meta["resourceVersion"]}},
            )
            return
        except ApiException as exc:
            if exc.status == 409:
                continue
            if exc.status == 404:
                return
            logger.warning(
                "could not %s the uninstall hold on %s %s: %s",
                "put" if held else "take",
                kind,
                name,
                exc.reason,
            )
            return


async def let_go_at_shutdown(context: Context) -> None:
    """On SIGTERM: take this replica's hold off its own access. If Kubenova is being
    uninstalled, let go of what is still held first, within the pod's grace period.
    (A clean stop with tenants left, a rolling update, `helm uninstall` that keeps the
    CRDs: the hold only goes; a successor holds on its own.)"""
    if context.access_held and context.uninstalling:
        for tenant in list(context.stores.parents.of_kind("Tenant")):
            name = tenant["metadata"]["name"]
            projects = context.stores.parents.in_namespace("Project", owner_namespace(name))
            try:
                await let_go(context, name, tenant, list(projects))
            except ApiException as exc:
                logger.warning("tenant %s: could not let go at shutdown: %s", name, exc.reason)
    await release_access(context, "the operator is shutting down")
