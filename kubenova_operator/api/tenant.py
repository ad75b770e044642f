"""Tenant: a team's slice of the cluster (cluster-scoped)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field

from . import validation as V
from .common import (
    AGE_COLUMN,
    DNS_LABEL,
    READY_COLUMN,
    REASON_COLUMN,
    CustomResource,
    DeletionPolicy,
    DriftPolicy,
    KubeModel,
    NamespaceMetadata,
    PrinterColumn,
    Quantity,
    ResourceInfo,
    StatusBase,
    Subject,
    cel,
)
from .project import ApplicationCounts

# "<tenant>-owner" is the longest name Kubenova derives from a tenant alone.
OWNER_SUFFIX = "-owner"
APPS_SUFFIX = "-apps"
MAX_TENANT_NAME = 63 - len(OWNER_SUFFIX)

MIN_TOKEN_TTL_SECONDS = 600  # the TokenRequest API refuses anything shorter
MAX_TOKEN_TTL_SECONDS = 7 * 24 * 3600
# KubeConfigRequests a tenant may hold. Every live one is a subject of the tenant's
# RoleBindings: a thousand keep the largest well under etcd's 1.5 MB object limit.
DEFAULT_MAX_REQUESTS = 100
MAX_REQUESTS = 1000


# What a container gets when the Tenant does not say (spec.limits); the CRD carries
# them as schema defaults, so the API server fills them in and the CEL rules comparing
# limits see them.
DEFAULT_LIMITS: dict[str, int | str] = {"cpu": "500m", "memory": "512Mi"}
DEFAULT_REQUESTS: dict[str, int | str] = {"cpu": "100m", "memory": "128Mi"}


class NetworkIsolation(StrEnum):
    STRICT = "Strict"
    TENANT = "Tenant"
    NONE = "None"


class PodSecurityLevel(StrEnum):
    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


class TenantBudget(KubeModel):
    """The tenant's aggregate budget, shared by its own namespaces and its projects."""

    hard: dict[str, Quantity] = Field(
        default_factory=dict,
        description="ResourceQuota-style hard limits for the whole tenant (e.g. "
        "requests.cpu, limits.memory, pods, persistentvolumeclaims). Projects carve "
        "their quota out of it; what is left goes to the tenant's apps namespace. Keys "
        "are ResourceQuota resource names; values non-negative quantities.",
        json_schema_extra=V.quota_map_schema(32),
    )
    max_projects: int | None = Field(
        default=None, ge=0, le=1000, description="The most Projects the tenant may have."
    )
    max_namespaces: int | None = Field(
        default=None,
        ge=2,
        le=10000,
        description="The most namespaces the tenant may have, its own two included.",
    )


def _le(a: str, b: str) -> str:
    return V.quantity_compare(a, "<=", b)


def _eq(a: str, b: str) -> str:
    return V.quantity_compare(a, "==", b)


# The API server defaults a LimitRange item before validating it: a resource in max but
# not in default gets default = max, one in default but not in defaultRequest gets
# defaultRequest = default (SetDefaults_LimitRangeItem). The rules compare what it
# will compare: defaultRequest with the effective default.
_EFFECTIVE_DEFAULT = (
    "(has(self.default) && k in self.default ? {op_default} : "
    "(!has(self.max) || !(k in self.max) || {op_max}))"
)


class ContainerLimits(KubeModel):
    """Container defaults enforced by a LimitRange in every tenant namespace."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.default) || !has(self.max) || self.default.all(k, "
                    f"!(k in self.max) || {_le('self.default[k]', 'self.max[k]')})",
                    "limits.default may not exceed limits.max for any resource (the "
                    "default is cpu 500m, memory 512Mi when limits.default is not set)",
                    ".default",
                ),
                cel(
                    "!has(self.defaultRequest) || self.defaultRequest.all(k, "
                    + _EFFECTIVE_DEFAULT.format(
                        op_default=_le("self.defaultRequest[k]", "self.default[k]"),
                        op_max=_le("self.defaultRequest[k]", "self.max[k]"),
                    )
                    + ")",
                    "limits.defaultRequest may not exceed limits.default (or limits.max "
                    "where limits.default does not name the resource) for any resource "
                    "(defaultRequest is cpu 100m, memory 128Mi when not set)",
                    ".defaultRequest",
                ),
                cel(
                    "!has(self.defaultRequest) || self.defaultRequest.all(k, !("
                    f"{V.is_extended_resource('k')} || k.startsWith('hugepages-')) || "
                    + _EFFECTIVE_DEFAULT.format(
                        op_default=_eq("self.defaultRequest[k]", "self.default[k]"),
                        op_max=_eq("self.defaultRequest[k]", "self.max[k]"),
                    )
                    + ")",
                    "hugepages and extended resources (e.g. nvidia.com/gpu) cannot be "
                    "overcommitted: limits.defaultRequest must equal limits.default (or "
                    "limits.max) for them",
                    ".defaultRequest",
                ),
            ]
        }
    )

    default: dict[str, Quantity] = Field(
        default_factory=lambda: dict(DEFAULT_LIMITS),
        description="Limits given to a container that sets none (cpu 500m, memory 512Mi "
        "when not set). Keys: cpu, memory, ephemeral-storage, hugepages-<size> or an "
        "extended resource (nvidia.com/gpu).",
        json_schema_extra=V.container_map_schema(DEFAULT_LIMITS),
    )
    default_request: dict[str, Quantity] = Field(
        default_factory=lambda: dict(DEFAULT_REQUESTS),
        description="Requests given to a container that sets none (cpu 100m, memory "
        "128Mi when not set). At most limits.default.",
        json_schema_extra=V.container_map_schema(DEFAULT_REQUESTS),
    )
    max: dict[str, Quantity] = Field(
        default_factory=dict,
        description="The most one container may ask for. At least limits.default and "
        "limits.defaultRequest.",
        json_schema_extra=V.container_map_schema(),
    )


class PodSecurity(KubeModel):
    """Pod Security Admission levels applied as namespace labels."""

    enforce: PodSecurityLevel = Field(
        default=PodSecurityLevel.BASELINE, description="Pods violating this level are refused."
    )
    warn: PodSecurityLevel = Field(
        default=PodSecurityLevel.RESTRICTED,
        description="Pods violating this level are admitted with a warning to the user.",
    )


class CredentialPolicy(KubeModel):
    """Bounds for the kubeconfigs issued for this tenant."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.defaultTTLSeconds <= self.maxTTLSeconds",
                    "defaultTTLSeconds must not exceed maxTTLSeconds",
                )
            ]
        }
    )

    default_ttl_seconds: int = Field(
        default=8 * 3600,
        ge=MIN_TOKEN_TTL_SECONDS,
        le=MAX_TOKEN_TTL_SECONDS,
        alias="defaultTTLSeconds",
        description="Token lifetime when a request does not ask for one.",
    )
    max_ttl_seconds: int = Field(
        default=24 * 3600,
        ge=MIN_TOKEN_TTL_SECONDS,
        le=MAX_TOKEN_TTL_SECONDS,
        alias="maxTTLSeconds",
        description="The longest token lifetime a request may ask for.",
    )
    max_requests: int = Field(
        default=DEFAULT_MAX_REQUESTS,
        ge=2,
        le=MAX_REQUESTS,
        alias="maxRequests",
        description="The most KubeConfigRequests the tenant's owner namespace may hold, "
        "its two default ones included: the namespace's ResourceQuota refuses more. Each "
        "is an identity (a ServiceAccount, a binding Secret, a subject in the tenant's "
        "RoleBindings) and work for the operator.",
    )


class CapsuleProxy(KubeModel):
    """Where this tenant's users reach the cluster through capsule-proxy."""

    url: str = Field(
        pattern=r"^https://[^\s/]+(/.*)?$",
        max_length=2048,
        description="capsule-proxy's HTTPS URL, e.g. https://capsule-proxy.example.com:9001.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "isURL(self) && url(self).getScheme() == 'https' && "
                    "url(self).getHostname() != ''",
                    "url must be an https:// URL with a host, e.g. "
                    "https://capsule-proxy.example.com:9001",
                )
            ]
        },
    )
    ca_bundle: str | None = Field(
        default=None,
        max_length=V.MAX_CA_BUNDLE_LENGTH,
        description="The PEM CA certificate(s) for the proxy's serving certificate, "
        "base64-encoded on one line (base64 -w0 ca.crt), at most "
        f"{V.MAX_CA_BUNDLE_LENGTH // 1024} KiB. Defaults to the cluster default's.",
        json_schema_extra={
            "format": "byte",
            "x-kubernetes-validations": [
                # format: byte makes the API server check the base64 and hand CEL the
                # decoded bytes.
                cel(
                    f"string(self).startsWith('{V.PEM_CERTIFICATE_BEGIN}') && "
                    f"string(self).contains('{V.PEM_CERTIFICATE_END}')",
                    "caBundle must be base64 of PEM certificates: the decoded text begins "
                    f"with {V.PEM_CERTIFICATE_BEGIN}",
                ),
                cel(
                    "!string(self).contains('PRIVATE KEY')",
                    "caBundle contains a private key: it would be handed to every user "
                    "in their kubeconfig; give only the CA certificate(s)",
                ),
            ],
        },
    )


class TenantSpec(KubeModel):
    display_name: str | None = Field(
        default=None, max_length=128, description="A human-friendly name for dashboards."
    )
    plan: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="The plan the tenant is on (free text, e.g. team, gold); copied to "
        "the kubenova.io/plan label of its namespaces.",
    )
    owners: list[Subject] = Field(
        default_factory=list,
        max_length=64,
        description="Who owns the tenant: full control of its namespaces, Projects and "
        "KubeConfigRequests. The tenant's kubenova-owner ServiceAccount is always an owner.",
    )
    viewers: list[Subject] = Field(
        default_factory=list,
        max_length=64,
        description="Who may read everything in the tenant's namespaces except Secrets.",
    )
    namespace_metadata: NamespaceMetadata = Field(
        default_factory=NamespaceMetadata,
        description="Labels and annotations propagated to every tenant namespace.",
    )
    budget: TenantBudget = Field(
        default_factory=TenantBudget, description="The tenant's aggregate budget."
    )
    limits: ContainerLimits = Field(
        default_factory=ContainerLimits,
        description="Container defaults (LimitRange) in every tenant namespace.",
        # An empty default lets the API server fill in the defaults of its fields.
        json_schema_extra={"default": {}},
    )
    network_isolation: NetworkIsolation = Field(
        default=NetworkIsolation.TENANT,
        description="Tenant (default): traffic into a tenant namespace only from the "
        "tenant's own namespaces; Strict: only from the same namespace, and egress only "
        "to the tenant and DNS; None: no NetworkPolicies.",
    )
    pod_security: PodSecurity = Field(
        default_factory=PodSecurity, description="Pod Security Admission levels."
    )
    credentials: CredentialPolicy = Field(
        default_factory=CredentialPolicy, description="Bounds for issued kubeconfigs."
    )
    capsule_proxy: CapsuleProxy | None = Field(
        default=None,
        description="Overrides the cluster-default capsule-proxy for this tenant.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Retain (default): deleting the Tenant leaves its namespaces and "
        "workloads, with Kubenova's labels removed. Delete: its namespaces are deleted.",
    )
    drift_policy: DriftPolicy = Field(
        default=DriftPolicy.HEAL,
        description="Heal (default): changes to what Kubenova built are reverted. "
        "Report: they are only reported (Drifted condition, Events).",
    )


class TenantPhase(StrEnum):
    """A one-word summary that never contradicts the Ready condition: Ready when it is
    True, else why not (Reconciling: work in progress; Stalled: the spec cannot be
    satisfied as written; Terminating: being deleted)."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    TERMINATING = "Terminating"


class TenantStatus(StatusBase):
    phase: TenantPhase | None = Field(default=None, description="A one-word summary.")
    namespaces: list[str] = Field(
        default_factory=list, description="Every namespace the tenant has, projects' included."
    )
    namespace_count: int | None = Field(default=None, description="len(namespaces).")
    project_count: int | None = Field(default=None, description="How many Projects it has.")
    usage: dict[str, str] = Field(
        default_factory=dict,
        description="Resource usage summed over the ResourceQuota status of all its "
        "namespaces, refreshed periodically.",
    )
    allocated: dict[str, str] = Field(
        default_factory=dict,
        description="How much of the budget is carved out by Projects.",
    )
    proxy_endpoint: str | None = Field(
        default=None, description="The API endpoint kubeconfigs for this tenant use."
    )
    applications: ApplicationCounts | None = Field(
        default=None,
        description="KubeVela Applications in all its projects, by health (the sum of "
        "the Projects' counts).",
    )


class Tenant(CustomResource):
    """A team's slice of the cluster: namespaces, quotas, limits, network isolation,
    Pod Security, owners and credentials."""

    info = ResourceInfo(
        kind="Tenant",
        plural="tenants",
        singular="tenant",
        scope="Cluster",
        short_names=["tnt", "kntenant"],
        description="A team's slice of the cluster: namespaces, quotas, limits, network "
        "isolation, Pod Security, owners and credentials. Capsule also defines a Tenant "
        "kind: use `kubectl get tenants.kubenova.io` (or `kubectl get tnt`).",
        validations=[
            cel(
                f"self.metadata.name.matches('{DNS_LABEL}')",
                "a Tenant name must be a DNS label (lower-case letters, digits and '-'), "
                "because namespaces are named after it",
            ),
            cel(
                f"size(self.metadata.name) <= {MAX_TENANT_NAME}",
                f"a Tenant name may have at most {MAX_TENANT_NAME} characters, so that "
                f"its namespace '<name>{OWNER_SUFFIX}' fits in 63",
            ),
        ],
        printer_columns=[
            READY_COLUMN,
            PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
            PrinterColumn(
                name="Namespaces",
                type="integer",
                json_path=".status.namespaceCount",
                description="How many namespaces the tenant has.",
            ),
            PrinterColumn(name="Projects", type="integer", json_path=".status.projectCount"),
            PrinterColumn(
                name="Apps", type="integer", json_path=".status.applications.total", priority=1
            ),
            PrinterColumn(
                name="Failing",
                type="integer",
                json_path=".status.applications.failing",
                priority=1,
            ),
            PrinterColumn(name="Plan", type="string", json_path=".spec.plan", priority=1),
            PrinterColumn(
                name="Endpoint",
                type="string",
                json_path=".status.proxyEndpoint",
                priority=1,
            ),
            REASON_COLUMN,
            AGE_COLUMN,
        ],
    )

    spec: TenantSpec = Field(default_factory=TenantSpec)
    status: TenantStatus = Field(default_factory=TenantStatus)


def owner_namespace(tenant: str) -> str:
    return f"{tenant}{OWNER_SUFFIX}"


def apps_namespace(tenant: str) -> str:
    return f"{tenant}{APPS_SUFFIX}"


def tenant_of_owner_namespace(namespace: str) -> str | None:
    """The tenant whose owner namespace this is, or None."""
    if namespace.endswith(OWNER_SUFFIX) and len(namespace) > len(OWNER_SUFFIX):
        return namespace[: -len(OWNER_SUFFIX)]
    return None
