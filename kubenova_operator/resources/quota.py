"""ResourceQuota and LimitRange: the budget and container defaults of a namespace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..api.tenant import ContainerLimits
from . import labels as L

QUOTA_NAME = "kubenova-quota"
LIMITS_NAME = "kubenova-limits"

# The owner namespace holds Kubenova objects (Projects, KubeConfigRequests, Secrets),
# not workloads: nothing there may consume the tenant's budget.
OWNER_NAMESPACE_HARD: dict[str, str] = {
    "pods": "0",
    "services": "0",
    "persistentvolumeclaims": "0",
}


def resource_quota(
    namespace: str,
    hard: Mapping[str, str | int],
    *,
    tenant: str,
    project: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
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
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {
            "name": LIMITS_NAME,
            "namespace": namespace,
            "labels": L.managed_labels(tenant, project, environment),
        },
        "spec": {"limits": [item]},
    }
