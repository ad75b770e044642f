"""Project: a tenant's application space, one namespace per environment."""

from __future__ import annotations

from pydantic import Field

from . import validation as V
from .common import (
    AGE_COLUMN,
    DNS_LABEL,
    READY_COLUMN,
    REASON_COLUMN,
    CustomResource,
    DeletionPolicy,
    KubeModel,
    NamespaceMetadata,
    PrinterColumn,
    Quantity,
    ResourceInfo,
    StatusBase,
    Subject,
    cel,
)

MAX_ENVIRONMENTS = 10


class Environment(KubeModel):
    """One environment of the project: a namespace `<tenant>-<project>-<name>`."""

    name: str = Field(
        min_length=1,
        max_length=20,
        pattern=DNS_LABEL,
        description="The environment's name (a DNS label), e.g. dev or prod.",
    )
    hard: dict[str, Quantity] | None = Field(
        default=None,
        description="This environment's ResourceQuota; defaults to spec.budget.hard. "
        "Keys are ResourceQuota resource names; values non-negative quantities.",
        json_schema_extra=V.quota_map_schema(16),
    )


class ProjectBudget(KubeModel):
    hard: dict[str, Quantity] = Field(
        default_factory=dict,
        description="The ResourceQuota of each of the project's namespaces. What the "
        "project claims from its tenant's budget is the sum over its namespaces. Keys "
        "are ResourceQuota resource names; values non-negative quantities.",
        json_schema_extra=V.quota_map_schema(32),
    )


class Delivery(KubeModel):
    """KubeVela delivery defaults for the project's Applications."""

    revision_limit: int = Field(
        default=10,
        ge=1,
        le=100,
        description="How many superseded ApplicationRevisions each Application in the "
        "project keeps besides its latest. Kubenova prunes with vela-core's rule; an "
        "Application's own inline garbage-collect policy takes precedence, and "
        "vela-core's --application-revision-limit still applies (the lower wins).",
    )
    default_workflow: bool = Field(
        default=True,
        description="With more than one environment: a Workflow `kubenova-promote` (and "
        "a topology Policy per environment) that deploys through the environments in "
        "order, waiting for an approval before each after the first. Applications opt "
        "in with spec.workflow.ref.",
    )


class ProjectSpec(KubeModel):
    display_name: str | None = Field(default=None, max_length=128)
    environments: list[Environment] = Field(
        default_factory=list,
        max_length=MAX_ENVIRONMENTS,
        description="One namespace per environment, `<tenant>-<project>-<env>`. With "
        "none, the project has the single namespace `<tenant>-<project>`.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    budget: ProjectBudget = Field(
        default_factory=ProjectBudget, description="The project's share of the tenant."
    )
    developers: list[Subject] = Field(
        default_factory=list,
        max_length=64,
        description="App users: may create and update KubeVela Applications in the "
        "project's namespaces and read the rest of them.",
    )
    viewers: list[Subject] = Field(
        default_factory=list, max_length=64, description="Read-only access to the project."
    )
    namespace_metadata: NamespaceMetadata = Field(
        default_factory=NamespaceMetadata,
        description="Labels and annotations for the project's namespaces (on top of the tenant's).",
    )
    delivery: Delivery = Field(default_factory=Delivery, description="KubeVela defaults.")
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Retain (default): deleting the Project leaves its namespaces, with "
        "Kubenova's labels removed. Delete: its namespaces are deleted.",
    )


class ApplicationCounts(KubeModel):
    total: int = 0
    healthy: int = 0
    progressing: int = 0
    failing: int = 0


class ProjectApplications(ApplicationCounts):
    failures: list[str] | None = Field(
        default=None,
        max_length=10,
        description="`<namespace>/<name>: <message>` of the failing Applications (at most "
        "10; the VelaSync has them all).",
    )


class ProjectStatus(StatusBase):
    tenant: str | None = Field(default=None, description="The tenant the project is in.")
    namespaces: list[str] = Field(default_factory=list, description="The project's namespaces.")
    claimed: dict[str, str] = Field(
        default_factory=dict,
        description="What the project claims from the tenant budget (sum over its namespaces).",
    )
    applications: ProjectApplications | None = Field(
        default=None, description="KubeVela Applications in the project, by health."
    )


class Project(CustomResource):
    """A tenant's application space: one namespace per environment, a budget carved
    from the tenant's, app-user access and a KubeVela project."""

    info = ResourceInfo(
        kind="Project",
        plural="projects",
        singular="project",
        scope="Namespaced",
        short_names=["proj", "knproject"],
        description="A tenant's application space. Lives in the tenant's owner "
        "namespace `<tenant>-owner`.",
        validations=[
            cel(
                f"self.metadata.name.matches('{DNS_LABEL}')",
                "a Project name must be a DNS label, because namespaces are named after it",
            ),
            # The tenant part is checked by the operator (CEL cannot read the namespace):
            # this bounds what can be checked here, with a one-character tenant.
            cel(
                "size(self.metadata.name) <= 61",
                "a Project name may have at most 61 characters",
            ),
            # KubeVela's env label is '<project>-<env>', '<project>-default' without
            # environments: a label value, at most 63 characters.
            cel(
                "(has(self.spec.environments) && size(self.spec.environments) > 0) || "
                "size(self.metadata.name) <= 55",
                "a Project without environments may have at most 55 characters, so that "
                "its KubeVela env label '<project>-default' fits in 63",
            ),
            cel(
                "!has(self.spec.environments) || self.spec.environments.all(e, "
                "size(self.metadata.name) + size(e.name) <= 60)",
                "a Project name and environment name together may have at most 60 "
                "characters, so that '<tenant>-<project>-<env>' fits in a namespace name",
            ),
        ],
        printer_columns=[
            PrinterColumn(name="Tenant", type="string", json_path=".status.tenant"),
            READY_COLUMN,
            PrinterColumn(
                name="Namespaces", type="string", json_path=".status.namespaces", priority=1
            ),
            PrinterColumn(name="Apps", type="integer", json_path=".status.applications.total"),
            PrinterColumn(name="Healthy", type="integer", json_path=".status.applications.healthy"),
            REASON_COLUMN,
            AGE_COLUMN,
        ],
    )

    spec: ProjectSpec = Field(default_factory=ProjectSpec)
    status: ProjectStatus = Field(default_factory=ProjectStatus)


def project_namespaces(tenant: str, project: str, spec: ProjectSpec) -> list[str]:
    """The namespaces a project has, in environment order."""
    if not spec.environments:
        return [f"{tenant}-{project}"]
    return [f"{tenant}-{project}-{env.name}" for env in spec.environments]
