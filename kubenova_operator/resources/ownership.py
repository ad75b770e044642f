"""Which namespaces a tenant may build in: the ones Kubenova created for it.

Kubenova creates a namespace (never server-side-applies one into existence) and marks
it with the UID of the Tenant it was created for. From then on the mark decides: a
namespace is the tenant's when it carries its UID; anything else of the same name (a
namespace made by hand, another tenant's, another project's of the same tenant) is a
conflict, reported and never relabelled, bound or deleted. The one re-adoption: a
namespace released by a Tenant of the same name (deletionPolicy Retain) is taken back
when that Tenant is created again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import labels as L


@dataclass(frozen=True)
class NamespaceRecord:
    """What Kubenova needs to know of an existing namespace."""

    tenant: str | None = None  # kubenova.io/tenant, while Kubenova manages it
    project: str | None = None  # kubenova.io/project
    tenant_uid: str | None = None  # kubenova.io/tenant-uid: whose Kubenova created it for
    released_from: str | None = None  # kubenova.io/released-from: the tenant that let go
    managed: bool = False  # app.kubernetes.io/managed-by=kubenova
    terminating: bool = False

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> NamespaceRecord:
        meta = body.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        return cls(
            tenant=labels.get(L.TENANT),
            project=labels.get(L.PROJECT),
            tenant_uid=annotations.get(L.TENANT_UID),
            released_from=annotations.get(L.RELEASED_FROM),
            managed=labels.get(L.MANAGED_BY) == L.MANAGER,
            terminating=bool(meta.get("deletionTimestamp")),
        )


def is_owned(record: NamespaceRecord | None, tenant_uid: str) -> bool:
    """Whether the namespace was created by Kubenova for the tenant with this UID."""
    return record is not None and record.tenant_uid == tenant_uid


def namespace_conflict(
    namespace: str,
    *,
    tenant: str,
    tenant_uid: str,
    project: str | None,
    record: NamespaceRecord | None,
) -> str | None:
    """Why `tenant` (for `project`, or itself) may not use `namespace`; None if it may
    (it does not exist yet, or it is the tenant's own)."""
    if record is None:
        return None
    if record.tenant_uid == tenant_uid:
        if record.managed and record.project != project:
            what = f"project {record.project!r}" if record.project else "the tenant itself"
            return f"namespace {namespace!r} already belongs to {what} of this tenant"
        return None
    if not record.managed and record.released_from == tenant:
        return None  # released by a Tenant of this name: taken back
    if record.tenant_uid is None:
        whose = "it was not created by Kubenova"
    elif record.managed and record.tenant:
        whose = f"it belongs to tenant {record.tenant!r}" + (
            f", project {record.project!r}" if record.project else ""
        )
    else:
        whose = "it was created by Kubenova for another tenant, since deleted"
    return f"namespace {namespace!r} already exists and {whose}; Kubenova does not adopt it"
