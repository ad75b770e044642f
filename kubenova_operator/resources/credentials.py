"""Credentials as children: the kubeconfigs every tenant gets (default owner and
readonly requests), and who each KubeConfigRequest's own identity is bound as.

Each live request has its own ServiceAccount (`kcr-<request>`, owned by the request),
built by its tenant's pass like every other child and bound exactly where its role
reaches, as a subject of the same RoleBindings the role's people are in. A revoked or
deleted request is left out of them on the next pass, which rewrites the bindings
first and then prunes the ServiceAccount: RBAC has no cache, so its next API call is
refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.common import API_VERSION
from ..api.tenant import owner_namespace
from ..kube.kinds import SERVICE_ACCOUNT
from . import labels as L

DEFAULT_SECRET = "kubenova-kubeconfigs"


def default_requests(tenant: str) -> list[dict[str, Any]]:
    """KubeConfigRequests `default-owner` and `default-readonly`, delivering to the keys
    `owner` and `readonly` of Secret `kubenova-kubeconfigs` in `<tenant>-owner`."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "KubeConfigRequest",
            "metadata": {
                "name": f"default-{role}",
                "namespace": owner_namespace(tenant),
                "labels": L.managed_labels(tenant),
            },
            "spec": {
                "role": role,
                "delivery": {"mode": "Secret", "secretName": DEFAULT_SECRET, "secretKey": role},
            },
        }
        for role in ("owner", "readonly")
    ]


@dataclass(frozen=True)
class RequestIdentities:
    """The ServiceAccount subjects of a tenant's live requests, by what they may do."""

    owners: list[dict[str, str]] = field(default_factory=list)
    readers: list[dict[str, str]] = field(default_factory=list)
    developers: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # by project
    service_accounts: list[dict[str, Any]] = field(default_factory=list)  # to build


def live(request: Mapping[str, Any]) -> bool:
    """Whether a request's identity may act: not revoked, not being deleted."""
    return not request["metadata"].get("deletionTimestamp") and not (request.get("spec") or {}).get(
        "revoked"
    )


def request_identities(tenant: str, requests: Iterable[Mapping[str, Any]]) -> RequestIdentities:
    """Who the tenant's live requests are (`requests`: the KubeConfigRequests in its
    owner namespace)."""
    out = RequestIdentities()
    namespace = owner_namespace(tenant)
    for request in sorted(requests, key=lambda r: r["metadata"]["name"]):
        if request["metadata"].get("namespace") != namespace or not live(request):
            continue
        spec = request.get("spec") or {}
        subject = {
            "kind": "ServiceAccount",
            "name": L.request_sa(request["metadata"]["name"]),
            "namespace": namespace,
        }
        role = str(spec.get("role"))
        out.service_accounts.append(
            request_service_account(
                request["metadata"]["name"],
                tenant,
                role=role,
                project=spec.get("project"),
                owner=L.controller_reference(
                    "KubeConfigRequest", request["metadata"]["name"], request["metadata"]["uid"]
                ),
            )
        )
        if role == "owner":
            out.owners.append(subject)
        elif role == "readonly":
            out.readers.append(subject)
        elif role == "developer" and spec.get("project"):
            out.developers.setdefault(spec["project"], []).append(subject)
    return out


def request_service_account(
    request: str, tenant: str, *, role: str, project: str | None, owner: dict[str, object]
) -> dict[str, Any]:
    """The request's own ServiceAccount, owned by the request (it goes with it)."""
    labels = L.managed_labels(tenant, project)
    labels[L.REQUEST] = request
    labels[L.CREDENTIAL_ROLE] = role
    return {
        **SERVICE_ACCOUNT.type_meta(),
        "metadata": {
            "name": L.request_sa(request),
            "namespace": owner_namespace(tenant),
            "labels": labels,
            "ownerReferences": [owner],
        },
        "automountServiceAccountToken": False,
    }
