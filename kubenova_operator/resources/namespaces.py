"""Namespaces: named after the tenant (and project, environment), labelled so that
Capsule adopts them, Pod Security applies, and NetworkPolicies can select the tenant."""

from __future__ import annotations

from typing import Any

from ..api.tenant import TenantSpec
from ..kube.kinds import NAMESPACE
from . import labels as L


def namespace(
    name: str,
    *,
    tenant: str,
    tenant_uid: str,
    tenant_spec: TenantSpec,
    role: str,
    project: str | None = None,
    environment: str | None = None,
    extra_labels: dict[str, str] | None = None,
    extra_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    ps = tenant_spec.pod_security
    labels = {
        # Propagated labels first, so Kubenova's own always win.
        **tenant_spec.namespace_metadata.labels,
        **(extra_labels or {}),
        **L.managed_labels(tenant, project, environment),
        L.NAMESPACE_ROLE: role,
        L.CAPSULE_TENANT: tenant,
        "pod-security.kubernetes.io/enforce": ps.enforce,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": ps.warn,
        "pod-security.kubernetes.io/warn-version": "latest",
        "pod-security.kubernetes.io/audit": ps.warn,
        "pod-security.kubernetes.io/audit-version": "latest",
    }
    if tenant_spec.plan:
        labels[L.PLAN] = tenant_spec.plan
    annotations = {
        **tenant_spec.namespace_metadata.annotations,
        **(extra_annotations or {}),
        # What makes the namespace this tenant's (resources/ownership.py).
        L.TENANT_UID: tenant_uid,
    }
    meta: dict[str, Any] = {"name": name, "labels": labels, "annotations": annotations}
    return {**NAMESPACE.type_meta(), "metadata": meta}


RELEASED_LABELS = (
    L.MANAGED_BY,
    L.TENANT,
    L.PROJECT,
    L.ENVIRONMENT,
    L.PLAN,
    L.NAMESPACE_ROLE,
    L.CAPSULE_TENANT,
)


def release_patch(tenant: str | None = None) -> dict[str, Any]:
    """The merge patch that lets go of an object (deletionPolicy Retain): Kubenova's
    identity labels go, so nothing selects or heals it any more; everything else stays,
    Pod Security labels, quotas and NetworkPolicies included, so workloads left behind
    are not suddenly less isolated than they were. A namespace also records the tenant
    that released it: a Tenant of that name created again takes it back."""
    patch: dict[str, Any] = {"metadata": {"labels": dict.fromkeys(RELEASED_LABELS)}}
    if tenant is not None:
        patch["metadata"]["annotations"] = {L.RELEASED_FROM: tenant}
    return patch
