"""KubeConfigRequest controller: issue, deliver, rotate and revoke kubeconfigs.

Tokens never leave this module except inside the delivered kubeconfig (a Secret, or
sealed to the requester's key in status): no log line, Event, condition or metric
carries one.
"""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import kopf

from ..api.common import API_VERSION, now
from ..api.kubeconfigrequest import CredentialRole, DeliveryMode, KubeConfigRequest
from ..api.project import Project, project_namespaces
from ..api.tenant import Tenant, apps_namespace, tenant_of_owner_namespace
from ..config import get_settings
from ..credentials.kubeconfig import render_kubeconfig
from ..credentials.rotation import issue_reason, renew_at, seconds_until
from ..credentials.sealing import InvalidPublicKey, load_public_key, seal
from ..credentials.tokens import (
    IssuedToken,
    ServiceAccountNotFound,
    binding_secret,
    binding_secret_name,
    legacy_secret_name,
    request_token,
)
from ..kube import store
from ..observability.metrics import CREDENTIAL_EXPIRY, TOKENS_ISSUED, TOKENS_REVOKED
from ..observability.reconcile import reconciler
from ..resources import labels as L
from . import events
from .conditions import condition, find, merge_conditions, same_status
from .context import ctx
from .tenant import proxy_endpoint, tenant_key
from .wiring import level_triggered, watched_as_child

KCRS = "kubeconfigrequests.v1alpha1.kubenova.io"
_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
_expiries: dict[tuple[str, str], datetime] = {}


class Refused(Exception):
    """The request cannot be served as it is: Ready=False with this reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _owner_ref(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "KubeConfigRequest",
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _ca_for(tenant: Tenant) -> bytes | None:
    """The CA of the endpoint in the kubeconfig: the tenant's proxy CA, else the
    cluster's (the one the operator itself trusts)."""
    if tenant.spec.capsule_proxy and tenant.spec.capsule_proxy.ca_bundle:
        return base64.b64decode(tenant.spec.capsule_proxy.ca_bundle)
    ca_file = ctx().kube.api.configuration.ssl_ca_cert
    return Path(ca_file).read_bytes() if ca_file else None


def _target(request: KubeConfigRequest, tenant: str, namespace: str) -> tuple[str, str]:
    """(ServiceAccount, context namespace) for the request's role."""
    spec = request.spec
    if spec.role == CredentialRole.OWNER:
        return L.OWNER_SA, apps_namespace(tenant)
    if spec.role == CredentialRole.READONLY:
        return L.READONLY_SA, apps_namespace(tenant)
    project = store.parents.get(("Project", namespace, spec.project or ""))
    if project is None or project["metadata"].get("deletionTimestamp"):
        raise Refused(
            "ProjectNotFound", f"there is no Project {spec.project!r} in namespace {namespace!r}"
        )
    built = (project.get("status") or {}).get("namespaces") or []
    if not built:
        raise Refused("ProjectNotReady", f"Project {spec.project!r} has no namespaces yet")
    names = project_namespaces(tenant, spec.project or "", Project.model_validate(project).spec)
    return L.deployer_sa(spec.project or ""), names[0]


def _tenant_of(namespace: str) -> tuple[str, Tenant]:
    """The tenant whose owner namespace holds the request (from the store)."""
    tenant_name = tenant_of_owner_namespace(namespace)
    tenant_body = store.parents.get(tenant_key(tenant_name or ""))
    if tenant_name is None or tenant_body is None:
        raise Refused(
            "TenantNotFound", f"namespace {namespace!r} is not a tenant's owner namespace"
        )
    return tenant_name, Tenant.model_validate(tenant_body)


async def mint(body: dict[str, Any]) -> tuple[str, datetime | None]:
    """A fresh kubeconfig for the request, stored nowhere (the aggregated API's
    `kubeconfigs`). Bound to the request's binding Secret like every other token, so
    revoking the request revokes these too."""
    request = KubeConfigRequest.model_validate(body)
    meta = body["metadata"]
    if request.spec.revoked:
        raise Refused("Revoked", "the KubeConfigRequest is revoked")
    tenant_name, tenant = _tenant_of(meta["namespace"])
    service_account, context_ns = _target(request, tenant_name, meta["namespace"])
    ttl = min(
        request.spec.ttl_seconds or tenant.spec.credentials.default_ttl_seconds,
        tenant.spec.credentials.max_ttl_seconds,
    )
    kubeconfig, token = await _new_kubeconfig(
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
    binding = await ctx().kube.apply(binding_secret(name, namespace, _owner_ref(body), tenant_name))
    try:
        token = await request_token(
            ctx().kube,
            namespace=namespace,
            service_account=service_account,
            seconds=ttl,
            bound_secret=binding_secret_name(name),
            bound_uid=binding["metadata"]["uid"],
            request=name,
        )
    except ServiceAccountNotFound as missing:
        # Its tenant's pass creates it (or it is being torn down with the tenant):
        # reported, and retried by the rotation timer.
        raise Refused(
            "ServiceAccountNotFound", f"{missing}; the kubeconfig is issued once it does"
        ) from missing
    kubeconfig = render_kubeconfig(
        name=f"{tenant_name}-{request.spec.role}",
        server=proxy_endpoint(tenant),
        ca_pem=_ca_for(tenant),
        token=token.token,
        namespace=context_ns,
    )
    return kubeconfig, token


async def reconcile_request(body: dict[str, Any]) -> float | None:
    """Bring one request to its desired state; return seconds until it needs a look."""
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    async with _locks[(namespace, name)]:
        request = KubeConfigRequest.model_validate(body)
        old = body.get("status") or {}
        try:
            tenant_name, tenant = _tenant_of(namespace)
            if request.spec.revoked:
                await _revoke(body, request, tenant_name)
                return None
            return await _issue_if_due(body, request, tenant, tenant_name)
        except Refused as refused:
            await _write_status(
                body,
                old,
                {},
                condition(
                    "Ready",
                    False,
                    refused.reason,
                    refused.message,
                    body["metadata"].get("generation"),
                ),
            )
            return None


async def _issue_if_due(
    body: dict[str, Any], request: KubeConfigRequest, tenant: Tenant, tenant_name: str
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
    service_account, context_ns = _target(request, tenant_name, body["metadata"]["namespace"])
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
    kubeconfig, token = await _new_kubeconfig(
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
    server = proxy_endpoint(tenant)
    status: dict[str, Any] = {
        "issuedAt": issued_at.isoformat().replace("+00:00", "Z"),
        "expiresAt": expires_at.isoformat().replace("+00:00", "Z") if expires_at else None,
        "rotations": request.status.rotations + (0 if reason == "initial" else 1),
        "server": server,
        "tokenSource": token.source,
    }
    if request.spec.delivery.mode == DeliveryMode.ENCRYPTED:
        status["kubeconfig"] = seal(kubeconfig.encode(), request.spec.recipient_public_key or "")
        status["secretName"] = None
    else:
        secret_name = request.spec.delivery.secret_name or f"{name}-kubeconfig"
        await _deliver_secret(
            body,
            request,
            secret_name=secret_name,
            kubeconfig=kubeconfig,
            status=status,
            tenant=tenant_name,
        )
        status["secretName"] = secret_name
        status["kubeconfig"] = None
    TOKENS_ISSUED.labels(request.spec.role, reason).inc()
    message = f"token for {namespace}/{service_account} expires at {status['expiresAt']}"
    ready = condition("Ready", True, "Issued", message, meta.get("generation"))
    extra = []
    if token.source != "TokenRequest":
        extra.append(
            condition(
                "TokenRequestAvailable",
                False,
                "LegacyTokenSecret",
                "the cluster has no TokenRequest API: a legacy ServiceAccount "
                "token Secret is used (it does not expire)",
                meta.get("generation"),
            )
        )
    await _write_status(body, body.get("status") or {}, status, ready, *extra)
    events.normal(
        body,
        "Rotated" if reason == "rotation" else "Issued",
        f"kubeconfig ({reason}) for {service_account}, expires {status['expiresAt']}",
    )
    if expires_at is None:
        return 3600.0
    _expiries[(namespace, name)] = expires_at
    CREDENTIAL_EXPIRY.set(min(seconds_until(t, now()) for t in _expiries.values()))
    return seconds_until(
        renew_at(issued_at, expires_at, request.spec.rotation.renew_before_percent), now()
    )


async def _deliver_secret(
    body: dict[str, Any],
    request: KubeConfigRequest,
    *,
    secret_name: str,
    kubeconfig: str,
    status: dict[str, Any],
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
                f"kubenova.io/{key}.issued-at": status["issuedAt"],
                f"kubenova.io/{key}.expires-at": status["expiresAt"] or "never",
            },
            "ownerReferences": [{**_owner_ref(body), "controller": False}],
        },
        "data": {key: base64.b64encode(kubeconfig.encode()).decode()},
    }
    # One field manager per request: several requests (the tenant's default owner and
    # readonly ones) may write different keys of one Secret without removing each other's.
    await ctx().kube.apply(secret, field_manager=f"kubenova-kcr-{meta['name']}"[:128])


async def _revoke(body: dict[str, Any], request: KubeConfigRequest, tenant: str) -> None:
    """Delete the binding Secret (every token issued for the request stops working) and
    the delivered kubeconfig."""
    kube = ctx().kube
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    old = body.get("status") or {}
    already = (find(old.get("conditions"), "Ready") or {}).get("reason") == "Revoked"
    await kube.delete("v1", "Secret", binding_secret_name(name), namespace)
    await kube.delete("v1", "Secret", legacy_secret_name(name), namespace)
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
    _expiries.pop((namespace, name), None)
    await _write_status(
        body,
        old,
        {"kubeconfig": None, "secretName": None},
        condition(
            "Ready",
            False,
            "Revoked",
            "spec.revoked is true: every token issued for this request is invalid",
            meta.get("generation"),
        ),
    )
    if not already:
        TOKENS_REVOKED.labels(request.spec.role).inc()
        events.normal(body, "Revoked", "every token issued for this request was revoked")


async def _write_status(
    body: dict[str, Any], old: dict[str, Any], fields: dict[str, Any], *conditions: dict[str, Any]
) -> None:
    meta = body["metadata"]
    status = {**fields, "observedGeneration": meta.get("generation")}
    status["conditions"] = merge_conditions(old.get("conditions"), list(conditions))
    if same_status(old, status):
        return
    await ctx().kube.patch_status(
        API_VERSION, "KubeConfigRequest", meta["name"], meta["namespace"], status
    )
    if (find(old.get("conditions"), "Ready") or {}).get("reason") != conditions[0][
        "reason"
    ] and conditions[0]["status"] == "False":
        events.warning(body, conditions[0]["reason"], conditions[0]["message"])


# --- kopf wiring -------------------------------------------------------------------


# Tenant-default requests are children of their Tenant (healed like any other).
watched_as_child(KCRS, "KubeConfigRequest")


@level_triggered(KCRS, "kubeconfigrequest")
async def request_changed(body: kopf.Body, **_: Any) -> None:
    await reconcile_request(dict(body))


@kopf.timer(
    KCRS,
    interval=get_settings().credential_check_seconds,
    initial_delay=get_settings().credential_check_seconds,
)
@reconciler("kubeconfigrequest-rotation")
async def request_rotation(body: kopf.Body, **_: Any) -> None:
    """Re-issues tokens whose renewal point has passed (and retries refused ones)."""
    await reconcile_request(dict(body))
