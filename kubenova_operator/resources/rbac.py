"""ServiceAccounts and RoleBindings: who may do what in a tenant's namespaces.

The permissions themselves are ClusterRoles shipped in manifests/rbac/roles.yaml; here
they are bound, namespace by namespace, to the tenant's and project's subjects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..api.common import Subject
from ..kube.kinds import CLUSTER_ROLE, CLUSTER_ROLE_BINDING, ROLE_BINDING, SERVICE_ACCOUNT
from . import labels as L


def service_account(
    name: str, namespace: str, *, tenant: str, project: str | None = None
) -> dict[str, Any]:
    return {
        **SERVICE_ACCOUNT.type_meta(),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": L.managed_labels(tenant, project),
        },
        # Kubeconfigs use short-lived TokenRequest tokens; nothing mounts this one.
        "automountServiceAccountToken": False,
    }


def sa_subject(name: str, namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def _dedupe(subjects: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for subject in subjects:
        key = tuple(sorted(subject.items()))
        if key not in seen:
            seen.add(key)
            out.append(subject)
    return out


def role_binding(
    cluster_role: str,
    namespace: str,
    subjects: Iterable[dict[str, str]],
    *,
    tenant: str,
    project: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    return {
        **ROLE_BINDING.type_meta(),
        "metadata": {
            # The ClusterRole's name ("kubenova:tenant-owner") is a valid RoleBinding
            # name, and one look tells what the binding grants.
            "name": cluster_role,
            "namespace": namespace,
            "labels": L.managed_labels(tenant, project, environment),
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": cluster_role,
        },
        "subjects": _dedupe(subjects),
    }


def tenant_cluster_access(tenant: str, subjects: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
    """A ClusterRole and binding letting the tenant's owners and viewers read their own
    Tenant and its live usage (cluster-scoped objects, so a RoleBinding cannot)."""
    name = f"kubenova:tenant:{tenant}"
    labels = L.managed_labels(tenant)
    return [
        {
            **CLUSTER_ROLE.type_meta(),
            "metadata": {"name": name, "labels": labels},
            "rules": [
                {
                    "apiGroups": ["kubenova.io"],
                    "resources": ["tenants"],
                    "resourceNames": [tenant],
                    "verbs": ["get"],
                },
                {
                    "apiGroups": ["api.kubenova.io"],
                    "resources": ["tenantusages"],
                    "resourceNames": [tenant],
                    "verbs": ["get"],
                },
            ],
        },
        {
            **CLUSTER_ROLE_BINDING.type_meta(),
            "metadata": {"name": name, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": _dedupe(subjects),
        },
    ]


def subjects(items: Iterable[Subject]) -> list[dict[str, str]]:
    return [subject.rbac() for subject in items]
