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

from . import validation as V

GROUP = "kubenova.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A DNS-1123 label: what a namespace name (and so every name part it is built from)
# must be.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_NAMESPACE_LENGTH = 63

# int-or-string, the shape of a resource.Quantity ("500m", "2Gi", 4): not negative,
# bounded in length and size (see validation.py).
Quantity = Annotated[int | str, WithJsonSchema(V.quantity_value_schema())]


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
                cel(
                    f"self.kind == 'ServiceAccount' || !self.name.startsWith('{V.SYSTEM_PREFIX}')",
                    "User and Group names beginning with 'system:' are Kubernetes' own "
                    "identities (system:masters, system:authenticated, "
                    "system:unauthenticated, system:anonymous, "
                    "system:serviceaccounts[:<namespace>], "
                    "system:serviceaccount:<namespace>:<name>, system:nodes, ...) and would "
                    "hand the tenant to the control plane or to everyone; for a "
                    "ServiceAccount use kind ServiceAccount with its name and namespace",
                    ".name",
                ),
                cel(
                    "self.kind != 'ServiceAccount' || "
                    f"self.name.matches({V.quoted(V.DNS_SUBDOMAIN)})",
                    "a ServiceAccount subject's name is the ServiceAccount's own name, a "
                    "DNS subdomain (lower-case letters, digits, '-' and '.'), with its "
                    "namespace in namespace",
                    ".name",
                ),
            ]
        }
    )

    kind: SubjectKind = Field(description="User, Group or ServiceAccount.")
    name: str = Field(
        min_length=1,
        max_length=253,
        description="The user or group name as the authenticator reports it, or the "
        "ServiceAccount's name (a DNS subdomain, without system:serviceaccount:). Names "
        "beginning with system: are refused for users and groups: they are Kubernetes' "
        "own identities (system:masters, system:authenticated, ...).",
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


LabelValue = Annotated[str, Field(max_length=63, pattern=V.LABEL_VALUE)]
AnnotationValue = Annotated[str, Field(max_length=V.MAX_ANNOTATIONS_SIZE)]


def _key_rules(what: str) -> list[dict[str, Any]]:
    return [
        cel(
            f"self.all(k, {V.is_qualified_name('k')})",
            f"{what} keys are qualified names: an optional prefix, a DNS subdomain of at "
            "most 253 characters, and '/', then a name of at most 63 characters (letters, "
            "digits, '-', '_' and '.', beginning and ending with a letter or digit)",
        )
    ]


class NamespaceMetadata(KubeModel):
    """Labels and annotations to put on every namespace this object creates."""

    labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        description=f"Labels added to each namespace (at most {V.MAX_LABELS}). Keys in the "
        f"domains {V.reserved_domains_text()} and their subdomains (node.kubernetes.io/, "
        "pod-security.kubernetes.io/, namespace.oam.dev/, ...) are reserved for "
        "Kubernetes, Kubenova, Capsule and KubeVela, except the app.kubernetes.io/ "
        "recommended labels (app.kubernetes.io/name, part-of, ...): "
        "app.kubernetes.io/managed-by is Kubenova's.",
        json_schema_extra={
            "x-kubernetes-validations": [
                *_key_rules("label"),
                cel(
                    f"self.all(k, !k.matches({V.quoted(V.RESERVED_KEY)}) || "
                    f"(k.startsWith('{V.LABEL_EXCEPTION_PREFIX}') && k != '{V.MANAGED_BY}'))",
                    f"labels under {V.reserved_domains_text()} and their subdomains are "
                    "set by Kubernetes, Kubenova, Capsule or KubeVela; of "
                    "app.kubernetes.io/ only managed-by is reserved",
                ),
            ],
            "maxProperties": V.MAX_LABELS,
        },
    )
    annotations: dict[str, AnnotationValue] = Field(
        default_factory=dict,
        description=f"Annotations added to each namespace: at most {V.MAX_ANNOTATIONS}, "
        f"{V.MAX_ANNOTATIONS_SIZE // 1024} KiB of keys and values together. Keys in the "
        f"domains {V.reserved_domains_text()} and their subdomains are reserved.",
        json_schema_extra={
            "x-kubernetes-validations": [
                *_key_rules("annotation"),
                cel(
                    f"self.all(k, !k.matches({V.quoted(V.RESERVED_KEY)}))",
                    f"annotations under {V.reserved_domains_text()} and their subdomains "
                    "are set by Kubernetes, Kubenova, Capsule or KubeVela",
                ),
                cel(
                    "self.map(k, size(k) + size(bytes(self[k]))).sum() <= "
                    f"{V.MAX_ANNOTATIONS_SIZE}",
                    f"annotations may have at most {V.MAX_ANNOTATIONS_SIZE} bytes (UTF-8) of "
                    "keys and values together",
                ),
            ],
            "maxProperties": V.MAX_ANNOTATIONS,
        },
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
