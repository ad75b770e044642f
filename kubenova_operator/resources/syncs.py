"""The CapsuleSync of a Tenant and the VelaSync of a Project: owned by their parent
(ownerReference), so they go with it and are recreated if deleted."""

from __future__ import annotations

from typing import Any

from ..api.common import API_VERSION
from . import labels as L


def capsule_sync(tenant: str, tenant_uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "CapsuleSync",
        "metadata": {
            "name": tenant,
            "labels": L.managed_labels(tenant),
            "ownerReferences": [L.controller_reference("Tenant", tenant, tenant_uid)],
        },
        "spec": {"tenantRef": {"name": tenant}},
    }


def vela_sync(project: str, namespace: str, project_uid: str, tenant: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "VelaSync",
        "metadata": {
            "name": project,
            "namespace": namespace,
            "labels": L.managed_labels(tenant, project),
            "ownerReferences": [L.controller_reference("Project", project, project_uid)],
        },
        "spec": {"projectRef": {"name": project}},
    }
