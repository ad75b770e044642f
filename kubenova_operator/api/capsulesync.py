"""CapsuleSync: the tenant as Capsule sees it (one per Tenant, owned by it)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .common import (
    AGE_COLUMN,
    READY_COLUMN,
    REASON_COLUMN,
    CustomResource,
    KubeModel,
    ObjectReference,
    PrinterColumn,
    ResourceInfo,
    StatusBase,
)


class CapsuleSyncSpec(KubeModel):
    tenant_ref: ObjectReference = Field(description="The Kubenova Tenant this mirrors.")


class CapsuleSyncStatus(StatusBase):
    available: bool | None = Field(
        default=None, description="Whether Capsule is installed and answering."
    )
    api_version: str | None = Field(
        default=None, description="The Capsule Tenant API version in use."
    )
    capsule_tenant: str | None = Field(default=None, description="The Capsule Tenant's name.")
    namespaces: list[str] = Field(
        default_factory=list, description="The namespaces Capsule counts in the tenant."
    )
    last_sync_time: datetime | None = Field(default=None)
    drift_corrections: int = Field(
        default=0, description="How many times the Capsule Tenant was healed back."
    )


class CapsuleSync(CustomResource):
    """The tenant as Capsule sees it. Created and owned by its Tenant."""

    info = ResourceInfo(
        kind="CapsuleSync",
        plural="capsulesyncs",
        singular="capsulesync",
        scope="Cluster",
        short_names=["csync"],
        description="The tenant as Capsule sees it. Created and owned by its Tenant.",
        printer_columns=[
            PrinterColumn(name="Tenant", type="string", json_path=".spec.tenantRef.name"),
            PrinterColumn(name="Available", type="boolean", json_path=".status.available"),
            READY_COLUMN,
            PrinterColumn(name="Synced", type="date", json_path=".status.lastSyncTime"),
            REASON_COLUMN,
            AGE_COLUMN,
        ],
    )

    spec: CapsuleSyncSpec
    status: CapsuleSyncStatus = Field(default_factory=CapsuleSyncStatus)
