"""The admission rules in the generated CRDs and policies, checked without a cluster.

What the API server makes of them is tests/e2e/test_admission.py; here: the rules are
where they must be, the patterns mean what they say (in Python's re, which agrees with
RE2 on these), the operator can read every value the schema admits, and the largest
spec the schema admits leaves room for Kubenova's bookkeeping under the API server's
256 KiB limit for annotations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubenova_operator.api import KubeConfigRequest, Project, Tenant
from kubenova_operator.api import validation as V
from kubenova_operator.api.crdgen import build_crd
from kubenova_operator.api.tenant import DEFAULT_LIMITS, DEFAULT_REQUESTS, ContainerLimits
from kubenova_operator.resources.quantity import parse_quantity

REPO = Path(__file__).resolve().parents[2]
SPEC_KINDS = (Tenant, Project, KubeConfigRequest)


def root(kind: type[Tenant | Project | KubeConfigRequest]) -> dict[str, Any]:
    schema: dict[str, Any] = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def spec_schema(kind: type[Tenant | Project | KubeConfigRequest]) -> dict[str, Any]:
    spec: dict[str, Any] = root(kind)["properties"]["spec"]
    return spec


def walk(node: dict[str, Any], path: str = "spec") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def rules(node: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in node.get("x-kubernetes-validations", [])]


def at(kind: type[Tenant | Project | KubeConfigRequest], path: str) -> dict[str, Any]:
    nodes = dict(walk(spec_schema(kind)))
    return nodes[path]


Kind = type[Tenant] | type[Project] | type[KubeConfigRequest]
QUOTA_MAPS: list[tuple[Kind, str]] = [
    (Tenant, "spec.budget.hard"),
    (Project, "spec.budget.hard"),
    (Project, "spec.environments[].hard"),
]
CONTAINER_MAPS: list[tuple[Kind, str]] = [
    (Tenant, f"spec.limits.{name}") for name in ("default", "defaultRequest", "max")
]
SUBJECT_LISTS = [
    (Tenant, "spec.owners[]"),
    (Tenant, "spec.viewers[]"),
    (Project, "spec.developers[]"),
    (Project, "spec.viewers[]"),
]
METADATA = [(kind, "spec.namespaceMetadata") for kind in (Tenant, Project)]


# --- every value is bounded ---------------------------------------------------------


@pytest.mark.parametrize("kind", SPEC_KINDS, ids=lambda k: k.info.kind)
def test_every_string_map_and_list_of_a_spec_is_bounded(kind: type[Tenant]) -> None:
    """Unbounded values make CEL cost estimates explode (the API server then refuses
    the CRD) and the object's size unbounded."""
    unbounded = []
    for path, node in walk(spec_schema(kind)):
        if node.get("type") == "string" and "enum" not in node and "maxLength" not in node:
            unbounded.append(path)
        if node.get("x-kubernetes-int-or-string") and "maxLength" not in node:
            unbounded.append(path)
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(path)
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(path)
    assert unbounded == []


def _key_bound(node: dict[str, Any]) -> int:
    text = " ".join(rules(node))
    found = re.search(r"size\(k\) <= (\d+)", text)
    if found:
        return int(found.group(1))
    assert "indexOf('/') <= 253" in text, f"map keys are not bounded: {text[:200]}"
    return 253 + 1 + 63  # a qualified name


def worst_case_json_size(node: dict[str, Any]) -> int:
    """An upper bound of the JSON size of any value the schema admits (ASCII text)."""
    if node.get("x-kubernetes-int-or-string"):
        return max(int(node["maxLength"]) + 2, 20)
    kind = node.get("type")
    if kind == "string":
        longest = max((len(e) for e in node["enum"]), default=0) if "enum" in node else None
        return (int(node["maxLength"]) if longest is None else longest) + 2
    if kind in ("integer", "number", "boolean"):
        return 20
    if kind == "array":
        return int(node["maxItems"]) * (worst_case_json_size(node["items"]) + 1) + 2
    assert kind == "object", node
    size = 2 + sum(
        len(name) + 4 + worst_case_json_size(sub)
        for name, sub in node.get("properties", {}).items()
    )
    values = node.get("additionalProperties")
    if isinstance(values, dict):
        count = int(node["maxProperties"])
        total = re.search(r"\.sum\(\) <= (\d+)", " ".join(rules(node)))
        if total:  # keys and values bounded together
            size += int(total.group(1)) + count * 6
        else:
            size += count * (_key_bound(node) + 4 + worst_case_json_size(values))
    return size


@pytest.mark.parametrize("kind", SPEC_KINDS, ids=lambda k: k.info.kind)
def test_the_largest_spec_leaves_room_for_the_operators_bookkeeping(kind: type[Tenant]) -> None:
    """kopf copies the spec, labels and annotations into kubenova.io/last-handled-
    configuration. Users' labels and annotations are at most MAX_USER_METADATA_SIZE
    (manifests/policies/kubenova-metadata-size.yaml), so the annotations total at most
    user metadata + (spec + user metadata) + kopf's progress records."""
    spec = worst_case_json_size(spec_schema(kind))
    assert spec <= 112 * 1024, spec
    progress = 8 * 1024
    assert 2 * V.MAX_USER_METADATA_SIZE + spec + progress < 256 * 1024


# --- quantities ---------------------------------------------------------------------

QUANTITY = re.compile(V.QUANTITY_PATTERN)
VALID_QUANTITIES = ["0", "1", "500m", "1.5", ".5", "5.", "+1", "2Gi", "1e3", "1E3", "1e-9", "8Pi"]
INVALID_QUANTITIES = ["-1", "-0", "1e2147483647", "1e123", "1e1.5", "1K", "1 Gi", "", "e3", "Gi"]


@pytest.mark.parametrize("text", VALID_QUANTITIES)
def test_quantity_pattern_admits(text: str) -> None:
    assert QUANTITY.match(text)


@pytest.mark.parametrize("text", INVALID_QUANTITIES)
def test_quantity_pattern_refuses(text: str) -> None:
    assert not QUANTITY.match(text)


@given(st.from_regex(V.QUANTITY_PATTERN, fullmatch=True))
def test_the_operator_reads_every_quantity_the_schema_admits(text: str) -> None:
    parse_quantity(text)


@pytest.mark.parametrize(("kind", "path"), QUOTA_MAPS + CONTAINER_MAPS)
def test_quantity_values_are_non_negative_and_bounded(kind: type[Tenant], path: str) -> None:
    value = at(kind, path + "{}")
    assert value["pattern"] == V.QUANTITY_PATTERN
    assert "-" not in value["pattern"].split("(")[0]
    assert value["minimum"] == 0
    assert value["maxLength"] == V.QUANTITY_MAX_LENGTH
    (rule,) = rules(value)
    assert f"self <= {V.MAX_QUANTITY}" in rule
    assert f"quantity('{V.MAX_QUANTITY}')" in rule
    # quantity() only ever sees a string the pattern admits (see validation.py)
    assert rule.index(".matches(") < rule.index("quantity(self)")


def test_no_rule_parses_a_quantity_it_did_not_check() -> None:
    """quantity() on a string the pattern refuses may be an API server-stalling one
    ("1e2147483647"): every rule that parses a value checks the pattern first."""
    constant = f"quantity('{V.MAX_QUANTITY}')"
    for kind in SPEC_KINDS:
        for path, node in walk(spec_schema(kind)):
            for rule in rules(node):
                if "quantity(" in rule.replace(constant, ""):
                    guard = rule.index(V.quoted(V.QUANTITY_PATTERN))
                    assert guard < rule.replace(constant, "").index("quantity("), f"{path}"


@pytest.mark.parametrize(("kind", "path"), QUOTA_MAPS)
def test_quota_maps_check_names_units_and_aliases(kind: type[Tenant], path: str) -> None:
    node = at(kind, path)
    text = " ".join(rules(node))
    assert "'requests.cpu'" in text and "'services.loadbalancers'" in text
    assert "startsWith('requests.hugepages-')" in text
    assert "isInteger()" in text
    assert "!('cpu' in self && 'requests.cpu' in self)" in text
    assert "!('memory' in self && 'requests.memory' in self)" in text
    assert "!('ephemeral-storage' in self && 'requests.ephemeral-storage' in self)" in text


@pytest.mark.parametrize(("kind", "path"), CONTAINER_MAPS)
def test_container_maps_check_names(kind: type[Tenant], path: str) -> None:
    text = " ".join(rules(at(kind, path)))
    assert "['cpu', 'ephemeral-storage', 'memory']" in text
    assert "startsWith('hugepages-')" in text


def test_container_defaults_are_schema_defaults_so_cel_sees_them() -> None:
    limits = at(Tenant, "spec.limits")
    assert limits["default"] == {}
    assert limits["properties"]["default"]["default"] == DEFAULT_LIMITS
    assert limits["properties"]["defaultRequest"]["default"] == DEFAULT_REQUESTS
    model = ContainerLimits()
    assert model.default == DEFAULT_LIMITS and model.default_request == DEFAULT_REQUESTS
    text = " ".join(rules(limits))
    assert "self.default[k]" in text and "self.max[k]" in text
    assert "self.defaultRequest[k]" in text


# --- names --------------------------------------------------------------------------

QUALIFIED = re.compile(V.QUALIFIED_NAME)


def is_qualified_name(value: str) -> bool:
    """k8s.io/apimachinery validation.IsQualifiedName, transcribed."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix or len(prefix) > 253:
            return False
        if not re.fullmatch(V.DNS_SUBDOMAIN.strip("^$"), prefix):
            return False
    else:
        return False
    return (
        0 < len(name) <= 63
        and re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", name) is not None
    )


@given(
    st.one_of(
        st.from_regex(V.QUALIFIED_NAME, fullmatch=True),
        st.text(alphabet="abAB09-_./", max_size=80),
    )
)
def test_the_qualified_name_rule_is_kubernetes_rule(value: str) -> None:
    ours = bool(QUALIFIED.match(value)) and ("/" not in value or value.index("/") <= 253)
    assert ours == is_qualified_name(value)


RESERVED = re.compile(V.RESERVED_KEY)


@pytest.mark.parametrize(
    "key",
    [
        "kubenova.io/tenant",
        "team.kubenova.io/x",
        "capsule.clastix.io/tenant",
        "projectcapsule.dev/tenant",
        "pod-security.kubernetes.io/enforce",
        "kubernetes.io/metadata.name",
        "node.kubernetes.io/x",
        "k8s.io/x",
        "x.k8s.io/y",
        "namespace.oam.dev/env",
        "usage.oam.dev/runtime",
        "app.kubernetes.io/managed-by",
    ],
)
def test_reserved_keys(key: str) -> None:
    assert RESERVED.match(key)


@pytest.mark.parametrize(
    "key", ["team", "example.com/x", "notkubenova.io/x", "kubernetes.io.example.com/x"]
)
def test_free_keys(key: str) -> None:
    assert not RESERVED.match(key)


@pytest.mark.parametrize(("kind", "path"), METADATA)
def test_namespace_metadata_rules(kind: type[Tenant], path: str) -> None:
    node = at(kind, path)
    labels, annotations = node["properties"]["labels"], node["properties"]["annotations"]
    assert labels["additionalProperties"]["maxLength"] == 63
    assert labels["additionalProperties"]["pattern"] == V.LABEL_VALUE
    label_rules = " ".join(rules(labels))
    assert V.quoted(V.RESERVED_KEY) in label_rules
    assert "k != 'app.kubernetes.io/managed-by'" in label_rules
    annotation_rules = " ".join(rules(annotations))
    assert V.quoted(V.RESERVED_KEY) in annotation_rules
    assert f".sum() <= {V.MAX_ANNOTATIONS_SIZE}" in annotation_rules
    assert "size(bytes(self[k]))" in annotation_rules
    assert "reserved" in labels["description"] and "reserved" in annotations["description"]


@pytest.mark.parametrize(("kind", "path"), SUBJECT_LISTS)
def test_subjects_refuse_system_identities(kind: type[Tenant], path: str) -> None:
    text = " ".join(rules(at(kind, path)))
    assert "self.kind == 'ServiceAccount' || !self.name.startsWith('system:')" in text
    assert V.quoted(V.DNS_SUBDOMAIN) in text


def test_ca_bundle_is_base64_of_pem_certificates() -> None:
    node = at(Tenant, "spec.capsuleProxy.caBundle")
    assert node["format"] == "byte"
    assert node["maxLength"] == V.MAX_CA_BUNDLE_LENGTH
    text = " ".join(rules(node))
    assert "string(self).startsWith('-----BEGIN CERTIFICATE-----')" in text
    assert "PRIVATE KEY" in text


def test_kubeconfig_requests_keep_off_kubenovas_secrets() -> None:
    text = " ".join(r["rule"] for r in root(KubeConfigRequest)["x-kubernetes-validations"])
    assert "'kubenova-kubeconfigs'" in text
    assert "['default-owner', 'default-readonly']" in text
    assert "endsWith('-token-binding')" in text and "endsWith('-legacy-token')" in text
    assert "size(self.metadata.name) <= 63" in text
    delivery = at(KubeConfigRequest, "spec.delivery")["properties"]
    assert delivery["secretName"]["pattern"] == V.DNS_SUBDOMAIN
    key = re.compile(delivery["secretKey"]["pattern"])
    for good in ("kubeconfig", "config.yaml", "a" * 52):
        assert key.match(good) and len(f"{good}.expires-at") <= 63
    for bad in (".hidden", "-x", "a" * 53, ""):
        assert not key.match(bad)


# --- policies -----------------------------------------------------------------------


def policy(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((REPO / "manifests" / "policies" / name).read_text()))


def test_metadata_size_policy() -> None:
    vap, binding = policy("kubenova-metadata-size.yaml")
    assert binding["spec"] == {"policyName": vap["metadata"]["name"], "validationActions": ["Deny"]}
    (rule,) = vap["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["kubenova.io"]
    assert set(rule["resources"]) == {"tenants", "projects", "kubeconfigrequests"}
    assert V.OPERATOR_USERNAME in vap["spec"]["matchConditions"][0]["expression"]
    (validation,) = vap["spec"]["validations"]
    assert validation["expression"].startswith(f"variables.size <= {V.MAX_USER_METADATA_SIZE} ||")
    assert "variables.size <= variables.oldSize" in validation["expression"]


def test_service_account_token_policy() -> None:
    vap, binding = policy("kubenova-service-account-tokens.yaml")
    assert binding["spec"]["validationActions"] == ["Deny"]
    selector = vap["spec"]["matchConstraints"]["namespaceSelector"]["matchExpressions"]
    assert selector == [{"key": "kubenova.io/tenant", "operator": "Exists"}]
    conditions = " ".join(c["expression"] for c in vap["spec"]["matchConditions"])
    assert "kubernetes.io/service-account-token" in conditions
    assert V.OPERATOR_USERNAME in conditions
    assert vap["spec"]["validations"][0]["reason"] == "Forbidden"


def test_owner_namespace_policy() -> None:
    vap, binding = policy("kubenova-owner-namespace.yaml")
    assert binding["spec"] == {"policyName": vap["metadata"]["name"], "validationActions": ["Deny"]}
    (rule,) = vap["spec"]["matchConstraints"]["resourceRules"]
    assert set(rule["resources"]) == {"projects", "kubeconfigrequests"}
    assert rule["operations"] == ["CREATE"]
    selector = vap["spec"]["matchConstraints"]["namespaceSelector"]["matchExpressions"]
    assert {"key": "kubenova.io/tenant", "operator": "Exists"} in selector
    assert {"key": "kubenova.io/namespace-role", "operator": "NotIn", "values": ["owner"]} in (
        selector
    )
    assert vap["spec"]["validations"][0]["reason"] == "Forbidden"
