"""Authentication and authorisation exactly as the API server delegates them.

Authentication: the aggregator calls us with a client certificate signed by the
requestheader CA (ConfigMap kube-system/extension-apiserver-authentication) and the
user in X-Remote-* headers. The headers are trusted only when the TLS peer presented
such a certificate with an allowed common name; anything else is 401, whatever headers
it sends.

Authorisation: one SubjectAccessReview per request, answered from a short cache (a few
seconds) for identical questions, so a burst of `kubectl get` costs one review.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import client

from ..kube.client import Kube

AUTH_CONFIGMAP = ("kube-system", "extension-apiserver-authentication")
SAR_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class RequestHeaderConfig:
    client_ca: str
    allowed_names: tuple[str, ...]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]
    extra_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)


class Unauthenticated(Exception):
    pass


async def load_requestheader_config(kube: Kube) -> RequestHeaderConfig:
    cm = await client.CoreV1Api(kube.api).read_namespaced_config_map(
        AUTH_CONFIGMAP[1], AUTH_CONFIGMAP[0]
    )
    data = cm.data or {}

    def names(key: str) -> tuple[str, ...]:
        return tuple(json.loads(data.get(key) or "[]"))

    ca = data.get("requestheader-client-ca-file")
    if not ca:
        raise RuntimeError(
            "the cluster has no requestheader CA: aggregation is not "
            "configured on the API server (--requestheader-client-ca-file)"
        )
    return RequestHeaderConfig(
        client_ca=ca,
        allowed_names=names("requestheader-allowed-names"),
        username_headers=names("requestheader-username-headers") or ("X-Remote-User",),
        group_headers=names("requestheader-group-headers") or ("X-Remote-Group",),
        extra_prefixes=names("requestheader-extra-headers-prefix") or ("X-Remote-Extra-",),
    )


def _common_name(peercert: dict[str, Any] | None) -> str | None:
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def authenticate(
    config: RequestHeaderConfig, peercert: dict[str, Any] | None, headers: Any
) -> User:
    """The user the aggregator vouches for. `peercert` is what the TLS layer verified
    against the requestheader CA (empty when the client sent no certificate)."""
    common_name = _common_name(peercert)
    if common_name is None:
        raise Unauthenticated("a client certificate from the front proxy is required")
    if config.allowed_names and common_name not in config.allowed_names:
        raise Unauthenticated(f"client certificate {common_name!r} is not an allowed proxy")
    name = next((headers[h] for h in config.username_headers if headers.get(h)), None)
    if not name:
        raise Unauthenticated("no user in the request headers")
    groups = tuple(g for h in config.group_headers for g in headers.getall(h, []))
    extra: dict[str, list[str]] = {}
    for key in headers:
        for prefix in config.extra_prefixes:
            if key.lower().startswith(prefix.lower()):
                extra.setdefault(key[len(prefix) :].lower(), []).extend(headers.getall(key))
    return User(name, groups, tuple(sorted((k, tuple(v)) for k, v in extra.items())))


class Authorizer:
    """SubjectAccessReviews with a short cache."""

    def __init__(self, kube: Kube) -> None:
        self._api = client.AuthorizationV1Api(kube.api)
        self._cache: dict[tuple[Any, ...], tuple[float, bool, str]] = {}

    async def allowed(
        self, user: User, verb: str, resource: str, name: str | None, namespace: str | None
    ) -> tuple[bool, str]:
        key = (user, verb, resource, name, namespace)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < SAR_CACHE_SECONDS:
            return hit[1], hit[2]
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user.name,
                groups=list(user.groups),
                extra={k: list(v) for k, v in user.extra} or None,
                resource_attributes=client.V1ResourceAttributes(
                    group="api.kubenova.io",
                    version="v1alpha1",
                    resource=resource,
                    verb=verb,
                    name=name,
                    namespace=namespace,
                ),
            )
        )
        result = await self._api.create_subject_access_review(review)
        verdict = bool(result.status.allowed), result.status.reason or ""
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[key] = (now, *verdict)
        return verdict
