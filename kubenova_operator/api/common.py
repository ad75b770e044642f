"""Types shared by every Kubenova kind.

The pydantic models in this package *are* the API: `crdgen` turns them into the CRD
YAML in `crds/`, and the controllers parse objects with them. Field descriptions become
`kubectl explain` text, so they are written for the person reading them there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "kubenova.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A DNS-1123 label: what a namespace name (and so every name part it is built from)
# must be.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_NAMESPACE_LENGTH = 63

# int-or-string, the shape of a resource.Quantity ("500m", "2Gi", 4).
Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
            r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        }
    ),
]


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry: a rule the API server checks on write."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class KubeModel(BaseModel):
    """Base for every spec/status fragment: camelCase on the wire, snake_case in Python.

    Unknown fields are ignored rather than refused: the API server has already pruned
    anything the schema does not know, and an older operator must keep reading objects
    written under a newer schema during an upgrade.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as stored in the API server (camelCase, no unset Nones)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SubjectKind(StrEnum):
    USER = "User"
    GROUP = "Group"
    SERVICE_ACCOUNT = "ServiceAccount"


class Subject(KubeModel):
    """An identity, as in an RBAC RoleBinding subject."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind != 'ServiceAccount' || has(self.namespace)",
                    "a ServiceAccount subject needs a namespace",
                ),
                cel(
                    "self.kind == 'ServiceAccount' || !has(self.namespace)",
                    "only a ServiceAccount subject has a namespace",
                ),
            ]
        }
    )

    kind: SubjectKind = Field(description="User, Group or ServiceAccount.")
    name: str = Field(
        min_length=1,
        max_length=253,
        description="The user or group name as the authenticator reports it, or the "
        "ServiceAccount's name.",
    )
    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="The ServiceAccount's namespace (ServiceAccount subjects only).",
    )

    def rbac(self) -> dict[str, str]:
        """The subject as an RBAC RoleBinding subject."""
        if self.kind == SubjectKind.SERVICE_ACCOUNT:
            return {"kind": "ServiceAccount", "name": self.name, "namespace": self.namespace or ""}
        return {"kind": self.kind, "name": self.name, "apiGroup": "rbac.authorization.k8s.io"}


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(KubeModel):
    """A condition in the shape of metav1.Condition, which kubectl wait, kstatus (Flux,
    Argo CD) and dashboards understand."""

    type: str = Field(max_length=316, description="Type of condition in CamelCase.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="A CamelCase, machine-readable reason for the last transition.",
    )
    message: str = Field(default="", max_length=32768, description="A human-readable explanation.")
    last_transition_time: datetime = Field(description="When the condition last changed status.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation this condition was computed from.",
    )


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class DriftPolicy(StrEnum):
    HEAL = "Heal"
    REPORT = "Report"


class ObjectReference(KubeModel):
    """A reference to a Kubenova object by name (same namespace where namespaced)."""

    name: str = Field(min_length=1, max_length=253, description="The object's name.")


class NamespaceMetadata(KubeModel):
    """Labels and annotations to put on every namespace this object creates."""

    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels added to each namespace. Keys under kubenova.io/ and "
        "capsule.clastix.io/ are reserved.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.all(k, !k.startsWith('kubenova.io/') && "
                    "!k.startsWith('capsule.clastix.io/') && "
                    "!k.startsWith('pod-security.kubernetes.io/') && "
                    "k != 'app.kubernetes.io/managed-by')",
                    "labels under kubenova.io/, capsule.clastix.io/, "
                    "pod-security.kubernetes.io/ and app.kubernetes.io/managed-by are "
                    "set by Kubenova",
                )
            ],
            "maxProperties": 64,
        },
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations added to each namespace.",
        json_schema_extra={"maxProperties": 64},
    )


class StatusBase(KubeModel):
    """What every Kubenova status has."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation the status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="The latest observations of the object's state. Ready is always "
        "present once the object was reconciled.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class PrinterColumn(BaseModel):
    name: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    json_path: str
    description: str = ""
    priority: int = 0


class ResourceInfo(BaseModel):
    """How a kind is served: everything the CRD needs besides the schema."""

    kind: str
    plural: str
    singular: str
    scope: Literal["Cluster", "Namespaced"]
    short_names: list[str]
    printer_columns: list[PrinterColumn]
    description: str
    # Root-level CEL rules (they may read metadata.name).
    validations: list[dict[str, str]] = []


READY_COLUMN = PrinterColumn(
    name="Ready",
    type="string",
    json_path='.status.conditions[?(@.type=="Ready")].status',
    description="Whether everything the object asks for is in place.",
)
REASON_COLUMN = PrinterColumn(
    name="Reason",
    type="string",
    json_path='.status.conditions[?(@.type=="Ready")].reason',
    priority=1,
    description="Why the object is (not) ready.",
)
AGE_COLUMN = PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp")


class CustomResource(KubeModel):
    """A top-level Kubenova kind: `spec` and `status` models plus how it is served."""

    info: ClassVar[ResourceInfo]

    @classmethod
    def api_version(cls) -> str:
        return API_VERSION


def now() -> datetime:
    """The current time, truncated to seconds as metav1.Time stores it."""
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(value: object) -> datetime | None:
    """A metav1.Time string (RFC 3339, `Z` for UTC) as an aware datetime; None if absent
    or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
