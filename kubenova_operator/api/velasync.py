"""VelaSync: the project as KubeVela sees it (one per Project, owned by it)."""

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
from .project import ApplicationCounts


def velasync_key(namespace: str, name: str) -> str:
    """The VelaSync queue's key for the VelaSync of Project `name` in `namespace` (it
    has the Project's name and namespace)."""
    return f"{namespace}/{name}"


class VelaSyncSpec(KubeModel):
    project_ref: ObjectReference = Field(description="The Project this mirrors.")


class ApplicationSummary(KubeModel):
    """One KubeVela Application, compactly."""

    name: str
    namespace: str
    phase: str | None = Field(default=None, description="status.status of the Application.")
    healthy: bool = False
    message: str | None = Field(default=None, max_length=1024)
    revision: str | None = Field(default=None, description="The latest revision's name.")
    revision_number: int | None = Field(default=None)
    workflow: str | None = Field(default=None, description="The workflow's state.")
    stuck: bool = Field(default=False, description="Workflow running for too long.")
    failed_since_healthy: bool = Field(
        default=False,
        description="It was failing at some point since it was last healthy: its "
        "return to health is announced with an Event.",
    )
    pod_selector: str | None = Field(
        default=None, description="Label selector of the Application's pods (for logs)."
    )
    revisions_selector: str | None = Field(
        default=None,
        description="Label selector of the Application's ApplicationRevisions (its history).",
    )
    since: datetime | None = Field(default=None, description="When the phase was entered.")


class VelaSyncStatus(StatusBase):
    available: bool | None = Field(
        default=None, description="Whether KubeVela (vela-core) is installed."
    )
    namespaces: list[str] = Field(default_factory=list)
    applications: list[ApplicationSummary] = Field(
        default_factory=list,
        max_length=500,
        description="A summary of each Application in the project's namespaces.",
    )
    counts: ApplicationCounts | None = None
    last_sync_time: datetime | None = None


class VelaSync(CustomResource):
    """The project as KubeVela sees it. Created and owned by its Project."""

    info = ResourceInfo(
        kind="VelaSync",
        plural="velasyncs",
        singular="velasync",
        scope="Namespaced",
        short_names=["vsync"],
        description="The project as KubeVela sees it, with the health of its "
        "Applications. Created and owned by its Project.",
        printer_columns=[
            PrinterColumn(name="Project", type="string", json_path=".spec.projectRef.name"),
            PrinterColumn(name="Available", type="boolean", json_path=".status.available"),
            READY_COLUMN,
            PrinterColumn(name="Apps", type="integer", json_path=".status.counts.total"),
            PrinterColumn(name="Healthy", type="integer", json_path=".status.counts.healthy"),
            REASON_COLUMN,
            AGE_COLUMN,
        ],
    )

    spec: VelaSyncSpec
    status: VelaSyncStatus = Field(default_factory=VelaSyncStatus)
