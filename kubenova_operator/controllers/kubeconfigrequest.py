"""KubeConfigRequest controller: issue, deliver, rotate and revoke kubeconfigs.

Tokens never leave this module except inside the delivered kubeconfig (a Secret, or
sealed to the requester's key in status): no log line, Event, condition or metric
carries one.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import kopf
from pydantic import ValidationError

from ..api.common import API_VERSION, now
from ..api.kubeconfigrequest import (
    CredentialRole,
    DeliveryMode,
    KubeConfigRequest,
    KubeConfigRequestStatus,
)
from ..api.project import Project, project_namespaces
from ..api.tenant import Tenant, apps_namespace, owner_namespace, tenant_of_owner_namespace
from ..credentials.errors import CredentialRefused
from ..credentials.kubeconfig import render_kubeconfig
from ..credentials.rotation import issue_reason, renew_at, seconds_until
from ..credentials.sealing import InvalidPublicKey, load_public_key, seal
from ..credentials.tokens import (
    BINDING_SUFFIX,
    IssuedToken,
    ServiceAccountNotFound,
    binding_secret,
    binding_secret_name,
    request_token,
)
from ..kube.store import list_started
from ..observability.metrics import (
    CREDENTIAL_EXPIRY,
    REVOCATION_SECONDS,
    TOKENS_ISSUED,
    TOKENS_REVOKED,
    set_credential_times,
    set_credentials,
)
from ..resources import labels as L
from ..resources.credentials import live
from . import events
from .children import RELISTS
from .conditions import find
from .context import Context, context_of
from .outcome import Outcome, render_conditions, status_patch, unchanged
from .tenant import proxy_endpoint, tenant_key
from .wiring import level_triggered, watched_as_child

logger = logging.getLogger(__name__)
KCRS = "kubeconfigrequests.v1alpha1.kubenova.io"
# Per-request locks and token expiries are the Context's `credentials`
# (controllers/context.py CredentialState).


class Refused(CredentialRefused):
    """The request cannot be served as it is: Stalled with this reason (a human has to
    change the request or its tenant), or, `waiting`, Reconciling (something it needs
    is still being built; its queue looks again after KUBENOVA_CREDENTIAL_CHECK_SECONDS)."""

    def __init__(self, reason: str, message: str, *, waiting: bool = False) -> None:
        super().__init__(reason, message)
        self.waiting = waiting

    def outcome(self) -> Outcome:
        if self.waiting:
            return Outcome.reconciling(self.reason, self.message)
        return Outcome.stalled(self.reason, self.message)


def _owner_ref(body: dict[str, Any]) -> dict[str, object]:
    return L.controller_reference(
        "KubeConfigRequest", body["metadata"]["name"], body["metadata"]["uid"]
    )


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


async def _ca_for(context: Context, tenant: Tenant) -> bytes | None:
    """The CA of the endpoint in the kubeconfig: the tenant's proxy CA; else, when a
    capsule-proxy is in use (the tenant's or the cluster default), the cluster
    default's from the Secret KUBENOVA_CAPSULE_PROXY_CA_SECRET names (its ca.crt);
    else the API server's (the one the operator itself trusts)."""
    if tenant.spec.capsule_proxy and tenant.spec.capsule_proxy.ca_bundle:
        return base64.b64decode(tenant.spec.capsule_proxy.ca_bundle)
    settings = context.settings
    proxied = tenant.spec.capsule_proxy is not None or settings.capsule_proxy_url
    if proxied and settings.capsule_proxy_ca_secret:
        namespace, _, name = settings.capsule_proxy_ca_secret.rpartition("/")
        secret = await context.kube.get("v1", "Secret", name, namespace or settings.namespace)
        data = ((secret or {}).get("data") or {}).get("ca.crt")
        if not data:
            raise Refused(
                "ProxyCANotFound",
                f"Secret {settings.capsule_proxy_ca_secret} has no ca.crt: the "
                "capsule-proxy CA for kubeconfigs (KUBENOVA_CAPSULE_PROXY_CA_SECRET)",
                waiting=True,
            )
        return base64.b64decode(data)
    return _read_ca(context.kube.api.configuration.ssl_ca_cert)


def _read_ca(ca_file: str | None) -> bytes | None:
    """The operator's own CA file (small, local, read once per issued kubeconfig)."""
    return Path(ca_file).read_bytes() if ca_file else None


def _target(
    context: Context, request: KubeConfigRequest, name: str, tenant: str, namespace: str
) -> tuple[str, str]:
    """(ServiceAccount, context namespace) for the request: its own ServiceAccount,
    bound by its tenant's pass where the role reaches."""
    spec = request.spec
    if spec.role in (CredentialRole.OWNER, CredentialRole.READONLY):
        return L.request_sa(name), apps_namespace(tenant)
    project = context.stores.parents.get(("Project", namespace, spec.project or ""))
    if project is None or project["metadata"].get("deletionTimestamp"):
        raise Refused(
            "ProjectNotFound", f"there is no Project {spec.project!r} in namespace {namespace!r}"
        )
    built = (project.get("status") or {}).get("namespaces") or []
    stalled = find((project.get("status") or {}).get("conditions"), "Stalled") or {}
    if not built and stalled.get("status") == "True":
        raise Refused(
            "ProjectNotReady",
            f"Project {spec.project!r} is stalled ({stalled.get('reason')}): fix the Project first",
        )
    if not built:
        raise Refused(
            "ProjectNotReady", f"Project {spec.project!r} has no namespaces yet", waiting=True
        )
    names = project_namespaces(tenant, spec.project or "", Project.model_validate(project).spec)
    return L.request_sa(name), names[0]


def _tenant_of(context: Context, namespace: str) -> tuple[str, Tenant]:
    """The tenant whose owner namespace holds the request (from the store)."""
    tenant_name = tenant_of_owner_namespace(namespace)
    tenant_body = context.stores.parents.get(tenant_key(tenant_name or ""))
    if tenant_name is None or tenant_body is None:
        raise Refused(
            "TenantNotFound", f"namespace {namespace!r} is not a tenant's owner namespace"
        )
    return tenant_name, Tenant.model_validate(tenant_body)


async def mint(context: Context, body: dict[str, Any]) -> tuple[str, datetime | None]:
    """A fresh kubeconfig for the request, stored nowhere (the aggregated API's
    `kubeconfigs`). Bound to the request's binding Secret like every other token, so
    revoking the request revokes these too."""
    request = KubeConfigRequest.model_validate(body)
    meta = body["metadata"]
    if request.spec.revoked:
        raise Refused("Revoked", "the KubeConfigRequest is revoked")
    tenant_name, tenant = _tenant_of(context, meta["namespace"])
    service_account, context_ns = _target(
        context, request, meta["name"], tenant_name, meta["namespace"]
    )
    ttl = min(
        request.spec.ttl_seconds or tenant.spec.credentials.default_ttl_seconds,
        tenant.spec.credentials.max_ttl_seconds,
    )
    kubeconfig, token = await _new_kubeconfig(
        context,
        body,
        request,
        tenant=tenant,
        tenant_name=tenant_name,
        service_account=service_account,
        context_ns=context_ns,
        ttl=ttl,
    )
    TOKENS_ISSUED.labels(request.spec.role, "on-demand").inc()
    return kubeconfig, token.expires_at


async def _new_kubeconfig(
    context: Context,
    body: dict[str, Any],
    request: KubeConfigRequest,
    *,
    tenant: Tenant,
    tenant_name: str,
    service_account: str,
    context_ns: str,
    ttl: int,
) -> tuple[str, IssuedToken]:
    """A token bound to the request's binding Secret (created if missing), and the
    kubeconfig around it."""
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    await _ensure_identity(context, body, request, tenant_name, context_ns)
    binding = await context.kube.apply(
        binding_secret(name, namespace, _owner_ref(body), tenant_name)
    )
    try:
        token = await request_token(
            context.kube,
            namespace=namespace,
            service_account=service_account,
            seconds=ttl,
            bound_secret=binding_secret_name(name),
            bound_uid=binding["metadata"]["uid"],
        )
    except ServiceAccountNotFound as missing:
        # Its tenant's pass creates it (or it is being torn down with the tenant):
        # reported, and looked at again by its queue (a waiting refusal).
        raise Refused(
            "ServiceAccountNotFound",
            f"{missing}; the kubeconfig is issued once it does",
            waiting=True,
        ) from missing
    kubeconfig = render_kubeconfig(
        name=f"{tenant_name}-{request.spec.role}",
        server=proxy_endpoint(context, tenant),
        ca_pem=await _ca_for(context, tenant),
        token=token.token,
        namespace=context_ns,
    )
    return kubeconfig, token


_ROLE_BINDINGS = {
    CredentialRole.OWNER: L.ROLE_TENANT_OWNER,
    CredentialRole.READONLY: L.ROLE_READONLY,
    CredentialRole.DEVELOPER: L.ROLE_APP_USER,
}


def _bound(
    context: Context, request: KubeConfigRequest, name: str, namespace: str, context_ns: str
) -> bool:
    """Whether the tenant's pass has bound the request's identity in its context
    namespace (from the store: no API call)."""
    binding = context.stores.children.get(
        ("RoleBinding", context_ns, _ROLE_BINDINGS[request.spec.role])
    )
    wanted = {"kind": "ServiceAccount", "name": L.request_sa(name), "namespace": namespace}
    return any(
        {k: s.get(k) for k in wanted} == wanted for s in (binding or {}).get("subjects") or []
    )


async def _ensure_identity(
    context: Context, body: dict[str, Any], request: KubeConfigRequest, tenant: str, context_ns: str
) -> None:
    """The request's own ServiceAccount, built and bound by a tenant pass that has
    seen the request: when this returns, a token for it works where its role reaches.
    (Only a new identity waits for a pass; a rotation finds it bound.)"""
    meta = body["metadata"]
    remember_request(context, body)
    if not _bound(context, request, meta["name"], meta["namespace"], context_ns):
        await context.queue.run(tenant, "credential")


def remember_request(context: Context, body: Mapping[str, Any] | None) -> bool:
    """Keep the request in the store (its tenant's pass binds its identity from there);
    return whether what its identity may do changed (new, revoked, role or project).
    None (a write found it gone) changes nothing: its DELETED event does."""
    if body is None:
        return False
    meta = body["metadata"]
    key = ("KubeConfigRequest", meta["namespace"], meta["name"])
    before = context.stores.parents.get(key)
    context.stores.parents.upsert({**body, "kind": "KubeConfigRequest", "apiVersion": API_VERSION})
    return before is None or _grant(before) != _grant(body)


def _grant(body: Mapping[str, Any]) -> tuple[bool, Any, Any]:
    spec = body.get("spec") or {}
    return live(body), spec.get("role"), spec.get("project")


async def reconcile_request(context: Context, body: dict[str, Any]) -> float | None:
    """Bring one request to its desired state; return seconds until it needs a look."""
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    async with context.credentials.locks[(namespace, name)]:
        request = KubeConfigRequest.model_validate(body)
        old = body.get("status") or {}
        try:
            tenant_name, tenant = _tenant_of(context, namespace)
            if request.spec.revoked:
                await _revoke(context, body, request, tenant_name)
                return None
            return await _issue_if_due(context, body, request, tenant, tenant_name)
        except Refused as refused:
            await _write_status(context, body, old, request.status, refused.outcome())
            # Waiting for something its tenant's pass builds: look again soon.
            return context.settings.credential_check_seconds if refused.waiting else None


async def _issue_if_due(
    context: Context,
    body: dict[str, Any],
    request: KubeConfigRequest,
    tenant: Tenant,
    tenant_name: str,
) -> float | None:
    spec, status = request.spec, request.status
    generation = body["metadata"].get("generation")
    ttl = spec.ttl_seconds or tenant.spec.credentials.default_ttl_seconds
    if ttl > tenant.spec.credentials.max_ttl_seconds:
        raise Refused(
            "TTLExceedsTenantMax",
            f"spec.ttlSeconds {ttl} is above tenant "
            f"{tenant_name!r}'s maxTTLSeconds "
            f"{tenant.spec.credentials.max_ttl_seconds}",
        )
    if spec.delivery.mode == DeliveryMode.ENCRYPTED:
        try:
            load_public_key(spec.recipient_public_key or "")
        except InvalidPublicKey as exc:
            raise Refused("InvalidPublicKey", str(exc)) from exc
    service_account, context_ns = _target(
        context, request, body["metadata"]["name"], tenant_name, body["metadata"]["namespace"]
    )
    issued, expires = _parse_time(status.issued_at), _parse_time(status.expires_at)
    reason = issue_reason(
        issued=issued,
        expires=expires,
        generation_seen=(body.get("status") or {}).get("observedGeneration") == generation
        and status.token_source is not None,
        renew_before_percent=spec.rotation.renew_before_percent,
        now=now(),
    )
    if reason is None:
        assert issued is not None and expires is not None
        return seconds_until(renew_at(issued, expires, spec.rotation.renew_before_percent), now())
    return await _issue(
        context,
        body,
        request,
        tenant=tenant,
        tenant_name=tenant_name,
        service_account=service_account,
        context_ns=context_ns,
        ttl=ttl,
        reason=reason,
    )


async def _issue(
    context: Context,
    body: dict[str, Any],
    request: KubeConfigRequest,
    *,
    tenant: Tenant,
    tenant_name: str,
    service_account: str,
    context_ns: str,
    ttl: int,
    reason: str,
) -> float:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    encrypted = request.spec.delivery.mode == DeliveryMode.ENCRYPTED
    secret_name = None if encrypted else request.spec.delivery.secret_name or f"{name}-kubeconfig"
    if secret_name is not None:
        await _check_delivery_target(context, body, request, secret_name)
    kubeconfig, token = await _new_kubeconfig(
        context,
        body,
        request,
        tenant=tenant,
        tenant_name=tenant_name,
        service_account=service_account,
        context_ns=context_ns,
        ttl=ttl,
    )
    issued_at = now()
    expires_at = token.expires_at or None
    expires = expires_at.isoformat().replace("+00:00", "Z") if expires_at else "never"
    if secret_name is not None:
        await _deliver_secret(
            context,
            body,
            request,
            secret_name=secret_name,
            kubeconfig=kubeconfig,
            issued_at=issued_at.isoformat().replace("+00:00", "Z"),
            expires=expires,
            tenant=tenant_name,
        )
    status = KubeConfigRequestStatus(
        issued_at=issued_at,
        expires_at=expires_at,
        rotations=request.status.rotations + (0 if reason == "initial" else 1),
        server=proxy_endpoint(context, tenant),
        secret_name=secret_name,
        token_source=token.source,
        kubeconfig=seal(kubeconfig.encode(), request.spec.recipient_public_key or "")
        if encrypted
        else None,
    )
    TOKENS_ISSUED.labels(request.spec.role, reason).inc()
    message = f"token for {namespace}/{service_account} expires at {expires}"
    await _write_status(
        context, body, body.get("status") or {}, status, Outcome.ready(message, "Issued")
    )
    events.normal(
        body,
        "Rotated" if reason == "rotation" else "Issued",
        f"kubeconfig ({reason}) for {service_account}, expires {expires}",
    )
    if expires_at is None:
        return 3600.0
    expiries = context.credentials.expiries
    expiries[(namespace, name)] = expires_at
    CREDENTIAL_EXPIRY.set(min(seconds_until(t, now()) for t in expiries.values()))
    return seconds_until(
        renew_at(issued_at, expires_at, request.spec.rotation.renew_before_percent), now()
    )


def _key_owner_annotation(key: str) -> str:
    return f"kubenova.io/{key}.request"


async def _check_delivery_target(
    context: Context, body: dict[str, Any], request: KubeConfigRequest, secret_name: str
) -> None:
    """A request delivers only into a Secret that is free or already its own for that
    key: never into a Secret somebody else made, a token-binding Secret, or a key that
    another request (a tenant default included) writes."""
    meta = body["metadata"]
    existing = await context.kube.get("v1", "Secret", secret_name, meta["namespace"])
    if existing is None:
        return
    key = request.spec.delivery.secret_key
    labels = existing["metadata"].get("labels") or {}
    annotations = existing["metadata"].get("annotations") or {}
    owner = annotations.get(_key_owner_annotation(key))
    if secret_name.endswith(BINDING_SUFFIX) or labels.get(L.MANAGED_BY) != L.MANAGER:
        why = (
            "it is a token-binding Secret"
            if secret_name.endswith(BINDING_SUFFIX)
            else ("it was not created by Kubenova")
        )
    elif owner is not None and owner != meta["name"]:
        why = f"its key {key!r} is delivered by KubeConfigRequest {owner!r}"
    else:
        return
    raise Refused(
        "DeliveryConflict",
        f"cannot deliver into Secret {secret_name!r}: {why}; choose another "
        "spec.delivery.secretName or secretKey",
    )


async def _deliver_secret(
    context: Context,
    body: dict[str, Any],
    request: KubeConfigRequest,
    *,
    secret_name: str,
    kubeconfig: str,
    issued_at: str,
    expires: str,
    tenant: str,
) -> None:
    meta = body["metadata"]
    key = request.spec.delivery.secret_key
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name,
            "namespace": meta["namespace"],
            "labels": L.managed_labels(tenant),
            "annotations": {
                f"kubenova.io/{key}.issued-at": issued_at,
                f"kubenova.io/{key}.expires-at": expires,
                _key_owner_annotation(key): meta["name"],
            },
            "ownerReferences": [{**_owner_ref(body), "controller": False}],
        },
        "data": {key: base64.b64encode(kubeconfig.encode()).decode()},
    }
    # One field manager per request: several requests (the tenant's default owner and
    # readonly ones) may write different keys of one Secret without removing each other's.
    await context.kube.apply(secret, field_manager=f"kubenova-kcr-{meta['name']}"[:128])


async def _revoke(
    context: Context, body: dict[str, Any], request: KubeConfigRequest, tenant: str
) -> None:
    """Delete the binding Secret (every token issued for the request stops working) and
    the delivered kubeconfig."""
    kube = context.kube
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    old = body.get("status") or {}
    already = (find(old.get("conditions"), "Ready") or {}).get("reason") == "Revoked"
    # Authorization first: RBAC has no cache, so once its tenant's pass has rebuilt the
    # bindings without this identity, its next request is refused. Then what
    # authenticates it: the binding Secret (the API server caches a validated token
    # for up to 10 s) and the ServiceAccount itself.
    started = time.monotonic()
    remember_request(context, body)
    await context.queue.run(tenant, "credential")
    if not already:
        REVOCATION_SECONDS.observe(time.monotonic() - started)
    await kube.delete("v1", "Secret", binding_secret_name(name), namespace)
    await kube.delete("v1", "ServiceAccount", L.request_sa(name), namespace)
    secret_name = old.get("secretName")
    if secret_name:
        # Applying nothing under the request's field manager removes what it wrote (the
        # kubeconfig key, its annotations), and leaves other requests' keys alone.
        await kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": namespace},
            },
            field_manager=f"kubenova-kcr-{name}"[:128],
        )
    context.credentials.expiries.pop((namespace, name), None)
    status = request.status.model_copy(update={"kubeconfig": None, "secret_name": None})
    await _write_status(
        context,
        body,
        old,
        status,
        Outcome.stalled(
            "Revoked", "spec.revoked is true: every token issued for this request is invalid"
        ),
    )
    if not already:
        TOKENS_REVOKED.labels(request.spec.role).inc()
        events.normal(body, "Revoked", "every token issued for this request was revoked")


async def _write_status(
    context: Context,
    body: dict[str, Any],
    old: dict[str, Any],
    status: KubeConfigRequestStatus,
    outcome: Outcome,
) -> None:
    """The request's status, rendered from `status` (its own fields) and the outcome;
    written when it changed, with a Warning Event when a refusal is new."""
    meta = body["metadata"]
    generation = meta.get("generation")
    status.observed_generation = generation
    status.conditions = render_conditions(old.get("conditions"), outcome, generation)
    patch = status_patch(status)
    if unchanged(old, patch):
        return
    remember_request(
        context,
        await context.kube.patch_status(
            API_VERSION, "KubeConfigRequest", meta["name"], meta["namespace"], patch
        ),
    )
    tenant = tenant_of_owner_namespace(meta["namespace"])
    if tenant:
        record_credentials(context, tenant)
    previous = (find(old.get("conditions"), "Ready") or {}).get("reason")
    if previous != outcome.reason and not outcome.is_ready and outcome.reason != "Revoked":
        events.warning(body, outcome.reason, outcome.message)


# --- kopf wiring -------------------------------------------------------------------


@kopf.on.event(KCRS, id="kcr-identity")
async def request_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Every request is known to its tenant's pass, which binds the identities of the
    live ones: a deleted or deleting request's identity is unbound at once."""
    assert namespace is not None
    context = context_of(memo)
    tenant = tenant_of_owner_namespace(namespace)
    key = ("KubeConfigRequest", namespace, name)
    if event.get("type") == "DELETED":
        changed = context.stores.parents.get(key) is not None
        context.stores.parents.remove(key)
        context.credentials.locks.pop((namespace, name), None)
    else:
        changed = remember_request(context, dict(body))
    if changed and tenant and context.stores.parents.get(tenant_key(tenant)) is not None:
        context.queue.submit(tenant, "credential")
    if tenant:
        record_credentials(context, tenant)


def record_credentials(context: Context, tenant: str) -> None:
    """kubenova_credentials{tenant,role,state}: the tenant's requests by role and by
    the reason of their Ready condition (Issued, Revoked, ...)."""
    namespace = owner_namespace(tenant)
    counts: dict[tuple[str, str], int] = {}
    expiries: list[datetime] = []
    rotations: list[datetime] = []
    for request in context.stores.parents.in_namespace("KubeConfigRequest", namespace):
        ready = find((request.get("status") or {}).get("conditions"), "Ready") or {}
        role = str((request.get("spec") or {}).get("role"))
        state = str(ready.get("reason") or "Pending")
        counts[(role, state)] = counts.get((role, state), 0) + 1
        times = _issued_times(request)
        if times is not None:
            expiries.append(times[0])
            rotations.append(times[1])
    set_credentials(tenant, counts)
    set_credential_times(
        tenant,
        min(expiries).timestamp() if expiries else None,
        min(rotations).timestamp() if rotations else None,
    )


def _issued_times(body: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """(expiry, rotation due) of a live request's current token, from its status (None:
    not issued, revoked or being deleted, or a token without expiry)."""
    try:
        request = KubeConfigRequest.model_validate(body)
    except ValidationError:
        return None
    issued, expires = request.status.issued_at, request.status.expires_at
    if (
        request.spec.revoked
        or body["metadata"].get("deletionTimestamp")
        or issued is None
        or expires is None
    ):
        return None
    return expires, renew_at(issued, expires, request.spec.rotation.renew_before_percent)


async def relist_requests(context: Context) -> None:
    """Forget requests a fresh LIST no longer has (deleted while no watch ran, e.g.
    across kopf's re-listing after a 410, which reports no deletions): their tenants'
    passes unbind their identities."""
    started = list_started()
    listed = await context.kube.list(API_VERSION, "KubeConfigRequest")
    keys = {
        ("KubeConfigRequest", o["metadata"]["namespace"], o["metadata"]["name"]) for o in listed
    }
    for key in context.stores.parents.stale("KubeConfigRequest", keys, before=started):
        logger.info("KubeConfigRequest %s/%s was deleted unseen; forgetting it", key[1], key[2])
        context.stores.parents.remove(key)
        context.credentials.locks.pop((key[1], key[2]), None)
        context.credentials.expiries.pop((key[1], key[2]), None)
        tenant = tenant_of_owner_namespace(key[1])
        if tenant and context.stores.parents.get(tenant_key(tenant)) is not None:
            context.queue.submit(tenant, "credential")


RELISTS.append(relist_requests)

# Tenant-default requests are children of their Tenant (healed like any other).
watched_as_child(KCRS, "KubeConfigRequest")


@level_triggered(KCRS, "kubeconfigrequest", resync=True)
async def request_changed(body: dict[str, Any], memo: kopf.Memo, **_: Any) -> float | None:
    """Issue, rotate or revoke. The returned delay (until the token's renewal point, or
    until a request waiting for something is looked at again) is when its queue runs
    the next pass: rotation needs no timer of kopf's, and so no finalizer."""
    context = context_of(memo)
    meta = body["metadata"]
    # The newest copy: the store also holds what this operator's own status writes
    # returned, which the watch may not have delivered yet (a pass on an older copy
    # would issue a token twice).
    latest = context.stores.parents.get(("KubeConfigRequest", meta["namespace"], meta["name"]))
    if latest is None or latest["metadata"].get("uid") != meta.get("uid"):
        latest = body
    return await reconcile_request(context, dict(latest))
