"""Tokens from the TokenRequest API, bound to a per-request Secret.

Every token issued for a KubeConfigRequest is bound (`boundObjectRef`) to one Secret,
`<request>-token-binding`. The API server checks that the Secret still exists, with
the same UID, each time a bound token is used: deleting it revokes every token ever
issued for the request at once, and recreating it starts a new generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ..kube.client import Kube
from ..resources import labels as L


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime | None
    source: str  # "TokenRequest"


BINDING_SUFFIX = "-token-binding"


def binding_secret_name(request: str) -> str:
    return f"{request}{BINDING_SUFFIX}"


def binding_secret(
    request: str, namespace: str, owner: dict[str, object], tenant: str
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
) -> IssuedToken:
    """A token for `service_account`, valid `seconds`, bound to the Secret (deleting it
    invalidates the token). There is no fallback: a never-expiring legacy token Secret
    is exactly what Kubenova promises not to mint, and every supported Kubernetes
    version serves the TokenRequest API."""
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
        if exc.status == 404:
            raise ServiceAccountNotFound(namespace, service_account) from exc
        raise
    return IssuedToken(result.status.token, result.status.expiration_timestamp, "TokenRequest")


class ServiceAccountNotFound(LookupError):
    """The ServiceAccount to issue for does not exist (not yet, or no longer)."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"ServiceAccount {namespace}/{name} does not exist")
        self.namespace, self.name = namespace, name
