"""Tokens from the TokenRequest API, bound to a per-request Secret.

Every token issued for a KubeConfigRequest is bound (`boundObjectRef`) to one Secret,
`<request>-token-binding`. The API server checks that the Secret still exists, with
the same UID, each time a bound token is used: deleting it revokes every token ever
issued for the request at once, and recreating it starts a new generation.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from datetime import datetime

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ..kube.client import Kube
from ..resources import labels as L

LEGACY_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime | None
    source: str  # "TokenRequest" or "LegacySecret"


def binding_secret_name(request: str) -> str:
    return f"{request}-token-binding"


def binding_secret(
    request: str, namespace: str, owner: dict[str, str], tenant: str
) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": binding_secret_name(request),
            "namespace": namespace,
            "labels": L.managed_labels(tenant) | {"kubenova.io/kubeconfig-request": request},
            "annotations": {
                "kubenova.io/purpose": "Tokens of this KubeConfigRequest are bound to this "
                "Secret: deleting it revokes them all."
            },
            # Deleting the request deletes this Secret (garbage collector), which
            # revokes its tokens.
            "ownerReferences": [owner],
        },
    }


async def request_token(
    kube: Kube,
    *,
    namespace: str,
    service_account: str,
    seconds: int,
    bound_secret: str,
    bound_uid: str,
    request: str,
) -> IssuedToken:
    """A token for `service_account`, valid `seconds`, bound to the Secret. Falls back to a
    legacy ServiceAccount token Secret only where the TokenRequest API is missing."""
    core = client.CoreV1Api(kube.api)
    body = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(
            audiences=[],
            expiration_seconds=seconds,
            bound_object_ref=client.V1BoundObjectReference(
                api_version="v1", kind="Secret", name=bound_secret, uid=bound_uid
            ),
        )
    )
    try:
        result = await core.create_namespaced_service_account_token(
            service_account, namespace, body
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
        # 404 for an existing ServiceAccount: no TokenRequest API (before 1.22).
        if not await _service_account_exists(core, service_account, namespace):
            raise ServiceAccountNotFound(namespace, service_account) from exc
        return await _legacy_token(core, namespace, service_account, request)
    return IssuedToken(result.status.token, result.status.expiration_timestamp, "TokenRequest")


class ServiceAccountNotFound(LookupError):
    """The ServiceAccount to issue for does not exist (not yet, or no longer)."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"ServiceAccount {namespace}/{name} does not exist")
        self.namespace, self.name = namespace, name


async def _service_account_exists(core: client.CoreV1Api, name: str, namespace: str) -> bool:
    try:
        await core.read_namespaced_service_account(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def legacy_secret_name(request: str) -> str:
    return f"{request}-legacy-token"


async def _legacy_token(
    core: client.CoreV1Api, namespace: str, sa: str, request: str
) -> IssuedToken:
    """The pre-1.22 way: a `kubernetes.io/service-account-token` Secret the token
    controller fills in. It never expires; revocation deletes it."""
    name = legacy_secret_name(request)
    try:
        await core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(
                    name=name,
                    annotations={"kubernetes.io/service-account.name": sa},
                    labels={L.MANAGED_BY: L.MANAGER},
                ),
                type="kubernetes.io/service-account-token",
            ),
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    deadline = asyncio.get_running_loop().time() + LEGACY_WAIT_SECONDS
    while True:
        secret = await core.read_namespaced_secret(name, namespace)
        token = (secret.data or {}).get("token")
        if token:
            return IssuedToken(base64.b64decode(token).decode(), None, "LegacySecret")
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"the token controller did not fill Secret {namespace}/{name}")
        await asyncio.sleep(0.5)
