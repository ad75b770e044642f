"""What the API server checks on write: the vocabulary of Kubenova's admission rules.

Every spec the CRDs admit must produce children (namespaces, ResourceQuotas,
LimitRanges, RoleBindings, Secrets) that the API server accepts; what cannot hold must
be refused when the object is written, with a message that says why. The rules here
are OpenAPI patterns and bounds where those can express them, and CEL
(`x-kubernetes-validations`) where they cannot. Each mirrors a rule of the Kubernetes
API server itself (k8s.io/kubernetes pkg/apis/core/validation, v1.34), named where it
is used, and each was checked against a real kube-apiserver (tests/e2e/test_admission.py).

Facts these rules are built on, measured against kube-apiserver v1.34.4:
- A CRD's CEL environment has the `quantity()` library, `isURL()/url()`, the strings
  extension (`indexOf`, `join`, ...) and Kubernetes' list library (`sum()`), but no
  base64 functions. A string with `format: byte` is validated as (standard) base64
  and reaches CEL as the decoded bytes, which is how caBundle is checked. (CEL decodes
  it with the URL alphabet, so a value with '+' or '/' fails there; base64 of PEM text
  never has either.)
- A pattern mismatch does not stop CEL rules from running on the same value, so every
  rule that calls `quantity()` first checks the value against QUANTITY_PATTERN itself:
  ResourceQuota with cpu "1e2147483647" kept kube-apiserver at 175 % CPU and growing
  past 1.4 GB for minutes, and `quantity()` parses with the same code.
- ResourceQuota accepts "1e30", "1e400" and "99999999999Ei" (binary-SI values are
  capped at 2^63-1), but its integer check (pods, count/*, extended resources)
  overflows above 9223372036854775 ((2^63-1)/1000, the largest milli-value) and then
  refuses arbitrary whole numbers ("9223372036854776", "1Ei", "7Ei" for pods).
- `maximum` on an int-or-string is compared as a float64 and admits 9223372036854776;
  the bound on integers is a CEL rule instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# ---------------------------------------------------------------------------------
# Quantities

# k8s.io/apimachinery resource.ParseQuantity's grammar without a sign (negative
# quantities are refused: a negative quota or limit means nothing) and with at most a
# two-digit exponent (see the module docstring for what an unbounded one does).
QUANTITY_PATTERN = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]{1,2})?$"
QUANTITY_MAX_LENGTH = 32
# (2^63-1)/1000: the largest value whose milli-value fits in an int64. Above it the API
# server's ResourceQuota integer check overflows, and so would any milli-unit sum.
MAX_QUANTITY = 9223372036854775
MAX_QUANTITY_TEXT = f"{MAX_QUANTITY} (about 8Pi)"
# Resource names a map of quantities may use, at most this long (the worst-case size
# of a spec stays bounded; see tests/unit/test_admission_schema.py).
MAX_RESOURCE_NAME_LENGTH = 128


def quoted(text: str) -> str:
    """A CEL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cel_list(items: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    return "[" + ", ".join(quoted(i) for i in sorted(items)) + "]"


def is_quantity_string(expr: str) -> str:
    """CEL: `expr` (an int-or-string) is a string in QUANTITY_PATTERN's grammar, so
    `quantity(expr)` is safe and cheap."""
    return f"(type({expr}) == string && {expr}.matches({quoted(QUANTITY_PATTERN)}))"


def quantity_of(expr: str) -> str:
    """CEL: the int-or-string `expr` as a Quantity (guard with is_valid_quantity)."""
    return f"quantity(string({expr}))"


def is_valid_quantity(expr: str) -> str:
    """CEL: `expr` is an integer, or a string quantity_of() may parse."""
    return f"(type({expr}) == int || {is_quantity_string(expr)})"


def quantity_compare(a: str, op: str, b: str) -> str:
    """CEL: `a op b` for two int-or-string quantities, true when either is malformed
    (the value's own pattern reports that)."""
    return (
        f"(!{is_valid_quantity(a)} || !{is_valid_quantity(b)} || "
        f"{quantity_of(a)}.compareTo({quantity_of(b)}) {op} 0)"
    )


def quantity_value_schema() -> dict[str, Any]:
    """An int-or-string resource.Quantity that is not negative and not absurdly large."""
    return {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY_PATTERN,
        "maxLength": QUANTITY_MAX_LENGTH,
        "minimum": 0,
        "x-kubernetes-validations": [
            {
                "rule": f"type(self) == int ? self <= {MAX_QUANTITY} : "
                f"(!self.matches({quoted(QUANTITY_PATTERN)}) || "
                f"quantity(self).compareTo(quantity('{MAX_QUANTITY}')) <= 0)",
                "message": f"a quantity may be at most {MAX_QUANTITY_TEXT}: Kubernetes "
                "computes resources in int64 milli-units, and a ResourceQuota's check "
                "of whole numbers overflows above it",
            }
        ],
        "description": "A resource.Quantity: a non-negative number with an optional "
        "suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (e3), "
        f"e.g. 500m, 2, 1.5Gi; at most {MAX_QUANTITY_TEXT}.",
    }


# ---------------------------------------------------------------------------------
# Names

# IsDNS1123Subdomain (ServiceAccount and Secret names, label key prefixes).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# IsQualifiedName, with the name part's 63-character bound in the pattern (the prefix
# bound is QUALIFIED_PREFIX_BOUND): label keys, annotation keys, resource names.
_NAME_PART = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?" + _NAME_PART + "$"
)
# IsValidLabelValue.
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def is_qualified_name(expr: str) -> str:
    """CEL: the string `expr` is a qualified name (`[prefix/]name`, prefix a DNS
    subdomain of at most 253 characters, name at most 63)."""
    return (
        f"{expr}.matches({quoted(QUALIFIED_NAME)}) && "
        f"(!{expr}.contains('/') || {expr}.indexOf('/') <= 253)"
    )


# ---------------------------------------------------------------------------------
# Resource names in ResourceQuota.spec.hard and in a Container LimitRange
# (ValidateResourceQuotaResourceName, validateContainerResourceName and the helpers
# of k8s.io/kubernetes pkg/apis/core/helper).

STANDARD_QUOTA_RESOURCES = frozenset(
    {
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "persistentvolumeclaims",
        "configmaps",
        "services.nodeports",
        "services.loadbalancers",
    }
)
INTEGER_RESOURCES = frozenset(
    {
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)
STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
# Quota names that mean the same: the short one is an alias of the requests. one.
QUOTA_ALIASES = {
    "cpu": "requests.cpu",
    "memory": "requests.memory",
    "ephemeral-storage": "requests.ephemeral-storage",
}


def is_extended_resource(expr: str) -> str:
    """CEL: IsExtendedResourceName (outside *kubernetes.io/, not requests.-prefixed):
    counted in whole units, never overcommitted."""
    return (
        f"({expr}.contains('/') && !{expr}.contains('kubernetes.io/') && "
        f"!{expr}.startsWith('requests.'))"
    )


def is_integer_resource(expr: str) -> str:
    """CEL: IsIntegerResourceName (object counts, count/<resource>, extended)."""
    return f"({expr} in {cel_list(INTEGER_RESOURCES)} || {is_extended_resource(expr)})"


def is_quota_resource(expr: str) -> str:
    """CEL: a resource name ResourceQuota.spec.hard accepts."""
    return (
        f"(size({expr}) <= {MAX_RESOURCE_NAME_LENGTH} && {is_qualified_name(expr)} && "
        f"({expr}.contains('/') || {expr} in {cel_list(STANDARD_QUOTA_RESOURCES)} || "
        f"{expr}.startsWith('hugepages-') || {expr}.startsWith('requests.hugepages-')))"
    )


def is_container_resource(expr: str) -> str:
    """CEL: a resource name a Container LimitRange accepts."""
    return (
        f"(size({expr}) <= {MAX_RESOURCE_NAME_LENGTH} && {is_qualified_name(expr)} && "
        f"({expr}.contains('/') ? ({expr}.contains('kubernetes.io/') || "
        f"!{expr}.startsWith('requests.')) : ({expr} in "
        f"{cel_list(STANDARD_CONTAINER_RESOURCES)} || {expr}.startsWith('hugepages-'))))"
    )


def is_whole(expr: str) -> str:
    """CEL: the quantity string `expr` (checked with is_quantity_string) is a whole number.

    isInteger() is exact but false for every quantity held as an arbitrary-precision
    decimal, whole or not ("1.5Gi", 1610612736, is one). Those are checked on the
    difference to the whole part of their float approximation, which is small (at most
    about 1000 below MAX_QUANTITY), so its float has room for nano-units: the API
    server's own check (milli-value % 1000) agrees, measured for 1.5Gi, 2Ki and 5."""
    q = f"quantity({expr})"
    rest = f"{q}.sub(int({q}.asApproximateFloat())).asApproximateFloat()"
    return f"({q}.isInteger() || {rest} == double(int({rest})))"


def whole_units_rule() -> dict[str, str]:
    """Object counts and extended resources in whole units (ValidateResourceQuantityValue;
    a Pod asking for half a GPU is refused too)."""
    return {
        "rule": f"self.all(k, !{is_integer_resource('k')} || type(self[k]) == int || "
        f"!{is_quantity_string('self[k]')} || {is_whole('self[k]')})",
        "message": "object counts (pods, services, count/<resource>, ...) and extended "
        "resources (domain/name, e.g. nvidia.com/gpu) must be whole numbers",
    }


def quota_map_schema(max_properties: int) -> dict[str, Any]:
    """json_schema_extra of a ResourceQuota-style `hard` map."""
    standard = ", ".join(sorted(STANDARD_QUOTA_RESOURCES))
    return {
        "maxProperties": max_properties,
        "x-kubernetes-validations": [
            {
                "rule": f"self.all(k, {is_quota_resource('k')})",
                "message": "a quota resource name is one of "
                f"{standard}; or hugepages-<size>, requests.hugepages-<size>; or a "
                "qualified name with a domain (count/<resource>[.<group>], "
                "requests.nvidia.com/gpu); at most "
                f"{MAX_RESOURCE_NAME_LENGTH} characters",
            },
            whole_units_rule(),
            {
                "rule": " && ".join(
                    f"!({quoted(alias)} in self && {quoted(full)} in self)"
                    for alias, full in sorted(QUOTA_ALIASES.items())
                )
                + " && self.all(k, !k.startsWith('hugepages-') || !(('requests.' + k) in self))",
                "message": "cpu, memory, ephemeral-storage and hugepages-<size> are the same "
                "quota as requests.cpu, requests.memory, requests.ephemeral-storage and "
                "requests.hugepages-<size>: set one of each pair",
            },
        ],
    }


def container_map_schema(default: Mapping[str, int | str] | None = None) -> dict[str, Any]:
    """json_schema_extra of a LimitRange (type Container) default/defaultRequest/max,
    with the schema default the API server fills in when the field is absent."""
    return {
        **({"default": dict(default)} if default is not None else {}),
        "maxProperties": 16,
        "x-kubernetes-validations": [
            {
                "rule": f"self.all(k, {is_container_resource('k')})",
                "message": "a container resource is cpu, memory, ephemeral-storage, "
                "hugepages-<size>, or an extended resource with a domain (e.g. "
                f"nvidia.com/gpu, not requests.-prefixed); at most "
                f"{MAX_RESOURCE_NAME_LENGTH} characters",
            },
            {
                "rule": f"self.all(k, !{is_extended_resource('k')} || type(self[k]) == int || "
                f"!{is_quantity_string('self[k]')} || {is_whole('self[k]')})",
                "message": "extended resources (domain/name, e.g. nvidia.com/gpu) must be "
                "whole numbers",
            },
        ],
    }


# ---------------------------------------------------------------------------------
# Subjects

SYSTEM_PREFIX = "system:"


# ---------------------------------------------------------------------------------
# Labels and annotations on the namespaces Kubenova makes

# Domains whose keys mean something to Kubernetes, Kubenova, Capsule or KubeVela on a
# namespace; a key in one of them or a subdomain of one (node.kubernetes.io/...) is
# reserved. The app.kubernetes.io/ recommended labels stay free, but for
# app.kubernetes.io/managed-by, which is Kubenova's.
RESERVED_DOMAINS = (
    "kubenova.io",
    "kubernetes.io",
    "k8s.io",
    "capsule.clastix.io",
    "projectcapsule.dev",
    "oam.dev",
)
RESERVED_KEY = r"^([^/]*\.)?(" + "|".join(re.escape(d) for d in RESERVED_DOMAINS) + ")/"
LABEL_EXCEPTION_PREFIX = "app.kubernetes.io/"
MANAGED_BY = "app.kubernetes.io/managed-by"
MAX_LABELS = 32
MAX_ANNOTATIONS = 64
# user annotations of one object's namespaceMetadata: keys plus values, in bytes. A
# Tenant's and a Project's together stay far under the API server's 256 KiB limit for
# a namespace's annotations.
MAX_ANNOTATIONS_SIZE = 16 * 1024


def reserved_domains_text() -> str:
    return ", ".join(f"{d}/" for d in RESERVED_DOMAINS)


# ---------------------------------------------------------------------------------
# caBundle: base64 of PEM certificates

PEM_CERTIFICATE_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_CERTIFICATE_END = "-----END CERTIFICATE-----"
MAX_CA_BUNDLE_LENGTH = 16 * 1024


# ---------------------------------------------------------------------------------
# Admission policies shipped in manifests/policies/

OPERATOR_USERNAME = "system:serviceaccount:kubenova-system:kubenova-operator"
# User-set metadata (labels plus annotations outside kubenova.io/) of a Tenant,
# Project or KubeConfigRequest, in bytes. kopf copies labels and annotations (and the
# spec) into its kubenova.io/last-handled-configuration annotation; this bound keeps
# the total under the API server's 256 KiB limit for metadata.annotations.
MAX_USER_METADATA_SIZE = 64 * 1024
