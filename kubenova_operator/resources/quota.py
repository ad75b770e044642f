"""ResourceQuota and LimitRange: the budget and container defaults of a namespace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..api.tenant import ContainerLimits
from ..kube.kinds import LIMIT_RANGE, RESOURCE_QUOTA
from . import labels as L
from .quantity import canonical_hard

QUOTA_NAME = "kubenova-quota"
LIMITS_NAME = "kubenova-limits"

# The owner namespace holds Kubenova objects (Projects, KubeConfigRequests, Secrets),
# not workloads: nothing there may consume the tenant's budget.
OWNER_NAMESPACE_HARD: dict[str, str] = {
    "pods": "0",
    "services": "0",
    "persistentvolumeclaims": "0",
}
# The owner namespace's count of KubeConfigRequests: credentials.maxRequests.
REQUESTS_COUNT = "count/kubeconfigrequests.kubenova.io"
# Object counts of what Kubenova itself (and the owner, through Projects and requests)
# keeps in the owner namespace: a budget naming them does not bind that namespace, or
# Kubenova could not deliver kubeconfigs there.
OWNER_NAMESPACE_UNCHARGED = frozenset(
    {
        "secrets",
        "configmaps",
        "count/secrets",
        "count/configmaps",
        "count/serviceaccounts",
        "count/events",
        "count/rolebindings.rbac.authorization.k8s.io",
        "count/projects.kubenova.io",
        REQUESTS_COUNT,  # bounded by credentials.maxRequests instead
    }
)


def owner_namespace_hard(budget: Mapping[str, str | int], max_requests: int) -> dict[str, str]:
    """The owner namespace's quota: no workloads, nothing of what the tenant's budget
    names (but the object counts above), and at most `max_requests` KubeConfigRequests
    (the tenant's credentials.maxRequests: the API server refuses the next one)."""
    hard = dict(OWNER_NAMESPACE_HARD)
    for key in canonical_hard(budget):
        if key not in OWNER_NAMESPACE_UNCHARGED:
            hard[key] = "0"
    hard[REQUESTS_COUNT] = str(max_requests)
    return hard


def bounded_hard(
    asked: Mapping[str, str | int], budget: Mapping[str, str | int]
) -> dict[str, str | int]:
    """A workload namespace's quota: what was asked for (under canonical names), and
    zero of every resource the tenant's budget names that the ask leaves out, so no
    namespace of a tenant is unbounded in anything its budget bounds."""
    hard = canonical_hard(asked)
    for key in canonical_hard(budget):
        hard.setdefault(key, "0")
    return hard


def resource_quota(
    namespace: str,
    hard: Mapping[str, str | int],
    *,
    tenant: str,
    project: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    return {
        **RESOURCE_QUOTA.type_meta(),
        "metadata": {
            "name": QUOTA_NAME,
            "namespace": namespace,
            "labels": L.managed_labels(tenant, project, environment),
        },
        "spec": {"hard": {key: str(value) for key, value in sorted(hard.items())}},
    }


def limit_range(
    namespace: str,
    limits: ContainerLimits,
    *,
    tenant: str,
    project: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "Container"}
    for key, values in (
        ("default", limits.default),
        ("defaultRequest", limits.default_request),
        ("max", limits.max),
    ):
        if values:
            item[key] = {name: str(value) for name, value in sorted(values.items())}
    return {
        **LIMIT_RANGE.type_meta(),
        "metadata": {
            "name": LIMITS_NAME,
            "namespace": namespace,
            "labels": L.managed_labels(tenant, project, environment),
        },
        "spec": {"limits": [item]},
    }
