"""Hostile input is refused at admission, by the real API server (issue #12, #13).

For each class of input the CRD schemas and the policies of manifests/policies/ guard,
many hostile variants are written and refused with 422/403 and the rule's message, and
a representative valid object is admitted and, where the operator builds something
from it, turns Ready (so what it built was accepted too). Where a rule mirrors one of
the API server's own (ResourceQuota and LimitRange validation), the same inputs are
also written as that object, dry-run, and the verdicts compared.

Tenants are written by the admin, or by an impersonated system owner where the
identity matters (the admission policies exempt the operator's ServiceAccount, the
identity the local operator runs as); Projects and KubeConfigRequests by the tenant
owner, with a token of the tenant's kubenova-owner ServiceAccount.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubenova_e2e.pki import CA
from kubenova_e2e.platform import OPERATOR_USERNAME, OperatorProcess
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubenova_operator.api.tenant import ContainerLimits
from kubenova_operator.resources.quantity import canonical_resource
from kubenova_operator.resources.quota import limit_range

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    api_message,
    create_tenants,
    eventually,
    impersonating_client,
    kcr_body,
    ready_at_generation,
    tenant_body,
    token_api_client,
    watch_until,
)

TENANT = "adm"
OWNER_NS = f"{TENANT}-owner"
APPS_NS = f"{TENANT}-apps"
PLAIN_NS = "adm-plain"  # no tenant: where built-in objects are dry-run for comparison
DRY_RUN = "All"


def raw(obj: dict[str, Any]) -> Any:
    """A plain dict as a request body (the client serialises dicts as they are; its type
    hints ask for its model classes)."""
    return obj


def project_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Project",
        "metadata": {"name": name, "namespace": OWNER_NS},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def plain_ns(cluster: Cluster) -> str:
    cluster.kubectl("create", "namespace", PLAIN_NS, check=False)
    return PLAIN_NS


@pytest.fixture(scope="module")
async def owner_api(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient, plain_ns: str
) -> AsyncIterator[client.ApiClient]:
    """A tenant, and an API client with its owner's token."""
    await create_tenants(api, {TENANT: {"owners": [{"kind": "User", "name": "olga"}]}})
    owner = await token_api_client(cluster, cluster.create_token("kubenova-owner", OWNER_NS))
    yield owner
    await owner.close()


@pytest.fixture(scope="module")
async def platform_api(cluster: Cluster) -> AsyncIterator[client.ApiClient]:
    """A system owner (group kubenova:admins), not the identity the operator runs as."""
    api = await impersonating_client(cluster.kubeconfig, "pat", "kubenova:admins")
    yield api
    await api.close()


async def create_tenant(
    api: client.ApiClient, name: str, spec: dict[str, Any], *, dry_run: bool = True, **meta: Any
) -> dict[str, Any]:
    body = tenant_body(name, **spec)
    body["metadata"].update(meta)
    custom = client.CustomObjectsApi(api)
    if dry_run:
        created = custom.create_cluster_custom_object(
            GROUP, VERSION, "tenants", body, dry_run=DRY_RUN
        )
    else:
        created = custom.create_cluster_custom_object(GROUP, VERSION, "tenants", body)
    result: dict[str, Any] = await created
    return result


async def create_namespaced(
    api: client.ApiClient, plural: str, body: dict[str, Any], *, dry_run: bool = False
) -> dict[str, Any]:
    custom, namespace = client.CustomObjectsApi(api), body["metadata"]["namespace"]
    if dry_run:
        created = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body, dry_run=DRY_RUN
        )
    else:
        created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    result: dict[str, Any] = await created
    return result


async def refused(coro: Any, status: int = 422) -> str:
    """Await a write that must be refused; its message."""
    with pytest.raises(ApiException) as caught:
        await coro
    assert caught.value.status == status, caught.value.body
    return api_message(caught.value)


async def verdict(coro: Any) -> str | None:
    """None when the write is admitted, else the API server's message."""
    try:
        await coro
    except ApiException as exc:
        assert exc.status in (400, 403, 422), exc.body
        return api_message(exc)
    return None


# --- 1. quantities ------------------------------------------------------------------

NOT_A_QUANTITY = "should match"
TOO_BIG = "a quantity may be at most 9223372036854775"
WHOLE = "must be whole numbers"
NAME = "a quota resource name is one of"
ALIAS = "set one of each pair"

HOSTILE_QUOTAS: list[tuple[str, dict[str, Any], str]] = [
    ("negative-string", {"requests.cpu": "-1"}, NOT_A_QUANTITY),
    ("negative-int", {"pods": -1}, "greater than or equal to 0"),
    ("negative-zero", {"pods": "-0"}, NOT_A_QUANTITY),
    ("huge-exponent", {"requests.cpu": "1e30"}, TOO_BIG),
    ("huge-binary", {"requests.memory": "99999999999Ei"}, TOO_BIG),
    ("huge-plain", {"requests.cpu": "9223372036854776"}, TOO_BIG),
    ("huge-int", {"pods": 9223372036854776}, TOO_BIG),
    ("nine-pi", {"requests.storage": "9Pi"}, TOO_BIG),
    # kube-apiserver spins on this one as a ResourceQuota: never send it there
    ("spinning-exponent", {"requests.cpu": "1e2147483647"}, NOT_A_QUANTITY),
    ("fractional-exponent", {"requests.cpu": "1e1.5"}, NOT_A_QUANTITY),
    ("long", {"requests.cpu": "0" * 32 + "1"}, "may not be more than 32"),
    ("capital-k", {"requests.cpu": "1K"}, NOT_A_QUANTITY),
    ("float", {"pods": 1.5}, "must be of type integer"),
    ("half-a-pod", {"pods": "1.5"}, WHOLE),
    ("milli-count", {"count/deployments.apps": "500m"}, WHOLE),
    ("half-a-gpu", {"nvidia.com/gpu": "0.5"}, WHOLE),
    ("bogus-resource", {"bogus-resource": "1"}, NAME),
    ("requests-bogus", {"requests.bogus": "1"}, NAME),
    ("upper-case", {"Pods": "1"}, NAME),
    ("storage", {"storage": "1Gi"}, NAME),
    ("count-slash-nothing", {"count/": "1"}, NAME),
    ("two-slashes", {"a.io/b/c": "1"}, NAME),
    ("bad-prefix", {"-x.io/y": "1"}, NAME),
    ("space", {"requests.cpu ": "1"}, NAME),
    ("hugepages-dash", {"hugepages-": "1"}, NAME),
    ("long-name", {"example.com/" + "x" * 120: "1"}, NAME),
    ("cpu-alias", {"cpu": "1", "requests.cpu": "1"}, ALIAS),
    ("memory-alias", {"memory": "1Gi", "requests.memory": "1Gi"}, ALIAS),
    (
        "ephemeral-alias",
        {"ephemeral-storage": "1Gi", "requests.ephemeral-storage": "1Gi"},
        ALIAS,
    ),
    ("hugepages-alias", {"hugepages-2Mi": "2Mi", "requests.hugepages-2Mi": "2Mi"}, ALIAS),
]
VALID_QUOTA: dict[str, Any] = {
    "requests.cpu": "8",
    "limits.cpu": "16",
    "requests.memory": "16Gi",
    "limits.memory": 34359738368,
    "requests.storage": "9223372036854775",
    "pods": 40,
    "services": "1e1",
    "services.loadbalancers": "0",
    "count/deployments.apps": "10",
    "count/applications.core.oam.dev": "5",
    "requests.nvidia.com/gpu": "2",
    "hugepages-2Mi": "1Gi",
    "ephemeral-storage": "100Gi",
}
QUOTA_IDS = [case[0] for case in HOSTILE_QUOTAS]


@pytest.mark.parametrize(("case", "hard", "message"), HOSTILE_QUOTAS, ids=QUOTA_IDS)
async def test_hostile_tenant_budget_is_refused(
    api: client.ApiClient, case: str, hard: dict[str, Any], message: str
) -> None:
    text = await refused(create_tenant(api, f"q-{case}", {"budget": {"hard": hard}}))
    assert message in text


@pytest.mark.parametrize(("case", "hard", "message"), HOSTILE_QUOTAS, ids=QUOTA_IDS)
async def test_hostile_project_budget_is_refused(
    owner_api: client.ApiClient, case: str, hard: dict[str, Any], message: str
) -> None:
    text = await refused(
        create_namespaced(owner_api, "projects", project_body(f"q-{case}", budget={"hard": hard}))
    )
    assert message in text
    env = {"environments": [{"name": "dev", "hard": hard}]}
    text = await refused(create_namespaced(owner_api, "projects", project_body("q-env", **env)))
    assert message in text


# Keys and values written both as a Tenant budget and as a ResourceQuota (dry-run):
# where the API server refuses the quota, the CRD refuses the Tenant; below the CRD's
# size bound (stricter on purpose) they agree.
QUOTA_KEYS = [
    "cpu",
    "requests.cpu",
    "limits.ephemeral-storage",
    "requests.storage",
    "storage",
    "pods",
    "resourcequotas",
    "quotas",
    "services.nodeports",
    "bogus-resource",
    "requests.bogus",
    "limits.bogus",
    "count/pods",
    "count/deployments.apps",
    "count/",
    "nvidia.com/gpu",
    "requests.nvidia.com/gpu",
    "limits.nvidia.com/gpu",
    "kubernetes.io/foo",
    "hugepages-2Mi",
    "requests.hugepages-1Gi",
    "hugepages-",
    "Pods",
    "a/b/c",
    "-a.io/b",
    "a.io/-b",
    "a.io/b_c",
    "a_b.io/c",
]
QUOTA_VALUES: list[int | str] = [
    "1",
    1,
    "0",
    "1.5",
    "500m",
    "1e3",
    "1E3",
    "2Ki",
    "1.5Gi",
    "+1",
    ".5",
    "5.",
    "1e-3",
    "1n",
    "9223372036854775",
]


@pytest.mark.usefixtures("plain_ns")
async def test_quota_rules_agree_with_resourcequota_validation(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    disagreements = []
    cases = [(key, "1") for key in QUOTA_KEYS] + [
        (key, value)
        for key in ("cpu", "pods", "count/pods", "nvidia.com/gpu")
        for value in QUOTA_VALUES
    ]
    for index, (key, value) in enumerate(cases):
        ours = await verdict(create_tenant(api, f"qd{index}", {"budget": {"hard": {key: value}}}))
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": f"qd{index}"},
            "spec": {"hard": {key: str(value)}},
        }
        theirs = await verdict(
            core.create_namespaced_resource_quota(PLAIN_NS, raw(quota), dry_run=DRY_RUN)
        )
        if (ours is None) != (theirs is None):
            disagreements.append((key, value, ours, theirs))
    assert disagreements == []


async def test_valid_budgets_are_admitted_and_built(
    api: client.ApiClient, owner_api: client.ApiClient
) -> None:
    await create_tenants(api, {"q-valid": {"budget": {"hard": VALID_QUOTA}}})
    quota = await client.CoreV1Api(api).read_namespaced_resource_quota(
        "kubenova-quota", "q-valid-apps"
    )
    # Under the names ResourceQuota means them by (`cpu` is `requests.cpu`, ...).
    assert {canonical_resource(k) for k in VALID_QUOTA} <= set(quota.spec.hard)
    body = project_body(
        "q-valid",
        budget={"hard": {"requests.cpu": "1", "pods": 4}},
        environments=[{"name": "dev", "hard": {"requests.nvidia.com/gpu": 1, "pods": "2"}}],
    )
    await create_namespaced(owner_api, "projects", body)
    await watch_until(api, "projects", "q-valid", ready_at_generation, namespace=OWNER_NS)


# --- 2. subjects --------------------------------------------------------------------

SYSTEM_NAMES = [
    "system:unauthenticated",
    "system:anonymous",
    "system:authenticated",
    "system:serviceaccounts",
    "system:serviceaccounts:kube-system",
    f"system:serviceaccounts:{OWNER_NS}",
    "system:serviceaccount:kube-system:default",
    f"system:serviceaccount:{OWNER_NS}:kubenova-owner",
    "system:masters",
    "system:nodes",
    "system:node:worker-1",
    "system:kube-controller-manager",
    "system:monitoring",
    "system:",
]
BAD_SERVICE_ACCOUNT_NAMES = [
    "system:serviceaccount:adm-owner:x",
    "Deployer",
    "deploy_er",
    "-deployer",
    "deployer-",
    "a..b",
    "x" * 254,
]
SYSTEM_MESSAGE = "use kind ServiceAccount"
SA_MESSAGE = "a ServiceAccount subject's name is the ServiceAccount's own name"


@pytest.mark.parametrize("kind", ["User", "Group"])
@pytest.mark.parametrize("name", SYSTEM_NAMES)
@pytest.mark.parametrize("field", ["owners", "viewers"])
async def test_system_identities_are_refused_in_tenants(
    api: client.ApiClient, field: str, name: str, kind: str
) -> None:
    spec = {field: [{"kind": "User", "name": "alice"}, {"kind": kind, "name": name}]}
    text = await refused(create_tenant(api, "subj", spec))
    assert SYSTEM_MESSAGE in text and f"spec.{field}[1].name" in text


@pytest.mark.parametrize("kind", ["User", "Group"])
@pytest.mark.parametrize("name", SYSTEM_NAMES)
@pytest.mark.parametrize("field", ["developers", "viewers"])
async def test_system_identities_are_refused_in_projects(
    owner_api: client.ApiClient, field: str, name: str, kind: str
) -> None:
    body = project_body("subj", **{field: [{"kind": kind, "name": name}]})
    text = await refused(create_namespaced(owner_api, "projects", body))
    assert SYSTEM_MESSAGE in text


@pytest.mark.parametrize("name", BAD_SERVICE_ACCOUNT_NAMES)
async def test_service_account_subjects_are_dns_subdomains(
    api: client.ApiClient, owner_api: client.ApiClient, name: str
) -> None:
    subject = {"kind": "ServiceAccount", "name": name, "namespace": OWNER_NS}
    text = await refused(create_tenant(api, "subj", {"owners": [subject]}))
    assert SA_MESSAGE in text or "Too long" in text
    body = project_body("subj", developers=[subject])
    text = await refused(create_namespaced(owner_api, "projects", body))
    assert SA_MESSAGE in text or "Too long" in text


async def test_valid_subjects_are_admitted(
    api: client.ApiClient, owner_api: client.ApiClient
) -> None:
    subjects = [
        {"kind": "User", "name": "alice@example.com"},
        {"kind": "User", "name": "https://issuer.example.com#system:x"},
        {"kind": "Group", "name": "team:platform"},
        {"kind": "ServiceAccount", "name": "ci.deployer", "namespace": "ci"},
    ]
    await create_tenant(api, "subj", {"owners": subjects, "viewers": subjects})
    body = project_body("subj", developers=subjects[:3], viewers=subjects[:3])
    await create_namespaced(owner_api, "projects", body, dry_run=True)


# --- 3. namespace labels and annotations --------------------------------------------

RESERVED_KEYS = [
    "kubenova.io/tenant",
    "kubenova.io/anything",
    "team.kubenova.io/x",
    "capsule.clastix.io/tenant",
    "projectcapsule.dev/tenant",
    "kubernetes.io/metadata.name",
    "pod-security.kubernetes.io/enforce",
    "node.kubernetes.io/x",
    "k8s.io/x",
    "policy.k8s.io/x",
    "namespace.oam.dev/env",
    "usage.oam.dev/runtime",
    "app.oam.dev/service-account-name",
    "app.kubernetes.io/managed-by",
]
BAD_KEYS = [
    "bad key",
    "",
    "-x",
    "x-",
    "a/b/c",
    "Example.com/x",
    "example.com/",
    "/x",
    "x" * 64,
    "a" * 254 + "/x",
    "ünïcode",
]
BAD_LABEL_VALUES = ["bad value", "-x", "x-", "x" * 64, "a/b", "ünïcode"]


def metadata_owner(
    kind: str, api: client.ApiClient, owner_api: client.ApiClient, meta: dict[str, Any]
) -> Any:
    spec = {"namespaceMetadata": meta}
    if kind == "Tenant":
        return create_tenant(api, "meta", spec)
    return create_namespaced(owner_api, "projects", project_body("meta", **spec))


@pytest.mark.parametrize("kind", ["Tenant", "Project"])
@pytest.mark.parametrize("key", RESERVED_KEYS)
async def test_reserved_keys_are_refused(
    api: client.ApiClient, owner_api: client.ApiClient, kind: str, key: str
) -> None:
    text = await refused(metadata_owner(kind, api, owner_api, {"labels": {key: "x"}}))
    assert "labels under kubenova.io/" in text
    if key.startswith("app.kubernetes.io/"):
        return  # only managed-by is reserved, as a label
    text = await refused(metadata_owner(kind, api, owner_api, {"annotations": {key: "x"}}))
    assert "annotations under kubenova.io/" in text


@pytest.mark.parametrize("kind", ["Tenant", "Project"])
@pytest.mark.parametrize("key", BAD_KEYS)
async def test_invalid_keys_are_refused(
    api: client.ApiClient, owner_api: client.ApiClient, kind: str, key: str
) -> None:
    for field in ("labels", "annotations"):
        text = await refused(metadata_owner(kind, api, owner_api, {field: {key: "x"}}))
        assert "keys are qualified names" in text


@pytest.mark.parametrize("kind", ["Tenant", "Project"])
@pytest.mark.parametrize("value", BAD_LABEL_VALUES)
async def test_invalid_label_values_are_refused(
    api: client.ApiClient, owner_api: client.ApiClient, kind: str, value: str
) -> None:
    text = await refused(metadata_owner(kind, api, owner_api, {"labels": {"team": value}}))
    assert "should match" in text or "Too long" in text


@pytest.mark.parametrize("kind", ["Tenant", "Project"])
@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"annotations": {"a": "x" * 16384}}, "bytes (UTF-8) of keys and values"),
        ({"annotations": {f"k{i}": "x" * 300 for i in range(60)}}, "bytes (UTF-8)"),
        ({"annotations": {f"k{i}": "é" * 150 for i in range(60)}}, "bytes (UTF-8)"),
        ({"annotations": {f"k{i}": "" for i in range(65)}}, "must have at most 64 items"),
        ({"labels": {f"k{i}": "" for i in range(33)}}, "must have at most 32 items"),
    ],
    ids=["one-large", "many", "multibyte", "too-many-annotations", "too-many-labels"],
)
async def test_oversized_metadata_is_refused(
    api: client.ApiClient, owner_api: client.ApiClient, kind: str, meta: Any, message: str
) -> None:
    assert message in await refused(metadata_owner(kind, api, owner_api, meta))


async def test_valid_namespace_metadata_reaches_the_namespaces(
    api: client.ApiClient, owner_api: client.ApiClient
) -> None:
    meta = {
        "labels": {
            "team": "payments",
            "app.kubernetes.io/part-of": "shop",
            "example.com/cost-center": "",
            "x" * 63: "y" * 63,
            "a." * 100 + "b/" + "c" * 63: "d",
        },
        "annotations": {"example.com/owner": "ünïcode ✓ " * 100, "note": "x" * 8000},
    }
    await create_tenants(api, {"meta": {"namespaceMetadata": meta}})
    namespace = await client.CoreV1Api(api).read_namespace("meta-apps")
    assert meta["labels"].items() <= namespace.metadata.labels.items()
    assert meta["annotations"].items() <= namespace.metadata.annotations.items()
    body = project_body("meta", namespaceMetadata={"labels": {"team": "checkout"}})
    await create_namespaced(owner_api, "projects", body)
    await watch_until(api, "projects", "meta", ready_at_generation, namespace=OWNER_NS)


# --- 4. container limits ------------------------------------------------------------

DEFAULT_ABOVE_MAX = "limits.default may not exceed limits.max"
REQUEST_ABOVE = "limits.defaultRequest may not exceed limits.default"
OVERCOMMIT = "cannot be overcommitted"
CONTAINER_NAME = "a container resource is"
HOSTILE_LIMITS: list[tuple[str, dict[str, Any], str]] = [
    ("max-below-implicit-default", {"max": {"cpu": "200m"}}, DEFAULT_ABOVE_MAX),
    ("max-below-implicit-memory", {"max": {"memory": "256Mi"}}, DEFAULT_ABOVE_MAX),
    ("max-below-default", {"default": {"cpu": "2"}, "max": {"cpu": "1"}}, DEFAULT_ABOVE_MAX),
    (
        "request-above-default",
        {"default": {"cpu": "1"}, "defaultRequest": {"cpu": "2"}},
        REQUEST_ABOVE,
    ),
    ("request-above-implicit-default", {"defaultRequest": {"cpu": "1"}}, REQUEST_ABOVE),
    (
        "request-above-max-by-defaulting",
        {"default": {"memory": "1Gi"}, "max": {"cpu": "200m"}, "defaultRequest": {"cpu": "300m"}},
        REQUEST_ABOVE,
    ),
    (
        "request-above-max-without-default",
        {"default": {}, "max": {"cpu": "1"}, "defaultRequest": {"cpu": "2"}},
        REQUEST_ABOVE,
    ),
    (
        "gpu-overcommit",
        {"default": {"nvidia.com/gpu": 1}, "defaultRequest": {"nvidia.com/gpu": 0}},
        OVERCOMMIT,
    ),
    (
        "hugepages-overcommit",
        {"max": {"hugepages-2Mi": "4Mi"}, "defaultRequest": {"hugepages-2Mi": "2Mi"}},
        OVERCOMMIT,
    ),
    ("half-a-gpu", {"max": {"nvidia.com/gpu": "0.5"}}, WHOLE),
    ("pods", {"max": {"pods": "1"}}, CONTAINER_NAME),
    ("requests-prefixed", {"default": {"requests.cpu": "1"}}, CONTAINER_NAME),
    ("storage", {"max": {"storage": "1Gi"}}, CONTAINER_NAME),
    ("bogus", {"max": {"bogus": "1"}}, CONTAINER_NAME),
    ("negative", {"max": {"cpu": "-1"}}, NOT_A_QUANTITY),
    ("huge", {"max": {"memory": "1e30"}}, TOO_BIG),
    ("too-many", {"max": {f"example.com/r{i}": 1 for i in range(17)}}, "at most 16 items"),
]
# Refused by the CRD, admitted by LimitRange validation: negative and huge values, more
# than 16 resources, and fractions of an extended resource (every Pod would be refused).
STRICTER_THAN_LIMITRANGE = {"negative", "huge", "too-many", "half-a-gpu"}
VALID_LIMITS: list[dict[str, Any]] = [
    {},
    {"max": {"cpu": "2", "memory": "4Gi"}},
    {"max": {"cpu": "500m", "memory": "512Mi"}},
    {"default": {"cpu": "1"}, "defaultRequest": {"cpu": "1"}, "max": {"nvidia.com/gpu": 1}},
    {"default": {}, "defaultRequest": {}, "max": {"cpu": "100m"}},
    {"default": {"hugepages-2Mi": "2Mi"}, "defaultRequest": {"hugepages-2Mi": "2Mi"}},
    {"defaultRequest": {"cpu": "500m", "memory": "512Mi"}},
]


@pytest.mark.parametrize(
    ("case", "limits", "message"), HOSTILE_LIMITS, ids=[c[0] for c in HOSTILE_LIMITS]
)
async def test_hostile_container_limits_are_refused(
    api: client.ApiClient, case: str, limits: dict[str, Any], message: str
) -> None:
    assert message in await refused(create_tenant(api, f"l-{case}", {"limits": limits}))


@pytest.mark.usefixtures("plain_ns")
async def test_limit_rules_agree_with_limitrange_validation(api: client.ApiClient) -> None:
    """The LimitRange the operator builds from each spec, dry-run: the CRD refuses the
    Tenant exactly when the API server would refuse its LimitRange."""
    core = client.CoreV1Api(api)
    disagreements = []
    for index, (case, limits, _) in enumerate(HOSTILE_LIMITS):
        if case in STRICTER_THAN_LIMITRANGE:
            continue
        disagreements += await _compare_limits(api, core, f"ld{index}", limits)
    for index, limits in enumerate(VALID_LIMITS):
        disagreements += await _compare_limits(api, core, f"lv{index}", limits)
    assert disagreements == []


async def _compare_limits(
    api: client.ApiClient, core: client.CoreV1Api, name: str, limits: dict[str, Any]
) -> list[tuple[str, dict[str, Any], str | None, str | None]]:
    ours = await verdict(create_tenant(api, name, {"limits": limits}))
    try:
        model = ContainerLimits.model_validate(limits)
    except ValueError as exc:  # not even a model: the CRD must have refused it
        return [] if ours else [(name, limits, ours, str(exc))]
    body = limit_range(PLAIN_NS, model, tenant=name)
    body["metadata"]["name"] = name
    theirs = await verdict(core.create_namespaced_limit_range(PLAIN_NS, raw(body), dry_run=DRY_RUN))
    return [] if (ours is None) == (theirs is None) else [(name, limits, ours, theirs)]


async def test_valid_limits_are_admitted_and_built(api: client.ApiClient) -> None:
    for index, limits in enumerate(VALID_LIMITS):
        await create_tenant(api, f"lv{index}", {"limits": limits})
    await create_tenants(api, {"l-valid": {"limits": VALID_LIMITS[3]}})
    built = await client.CoreV1Api(api).read_namespaced_limit_range(
        "kubenova-limits", "l-valid-apps"
    )
    assert built.spec.limits[0].max == {"nvidia.com/gpu": "1"}


# --- 5. caBundle --------------------------------------------------------------------


def _pem_ca() -> tuple[bytes, bytes]:
    ca = CA.create("adm-proxy-ca")
    cert = ca.cert.public_bytes(serialization.Encoding.PEM)
    key = ca.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert, key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PEM_MESSAGE = "caBundle must be base64 of PEM certificates"


def hostile_bundles() -> list[tuple[str, str, str]]:
    cert, key = _pem_ca()
    der = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)
    return [
        ("garbage", "not base64 at all!", "must be of type byte"),
        ("pem-not-encoded", cert.decode(), "must be of type byte"),
        ("wrapped", base64.encodebytes(cert).decode(), "must be of type byte"),
        ("base64-of-text", _b64(b"hello, this is not a certificate"), PEM_MESSAGE),
        ("base64-of-der", _b64(der), "caBundle"),
        ("base64-of-key", _b64(key), PEM_MESSAGE),
        ("certificate-and-key", _b64(cert + key), "caBundle contains a private key"),
        ("truncated", _b64(cert[:200]), PEM_MESSAGE),
        ("too-long", _b64(cert * 30), "Too long"),
    ]


HOSTILE_BUNDLES = hostile_bundles()


@pytest.mark.parametrize(
    ("case", "bundle", "message"), HOSTILE_BUNDLES, ids=[c[0] for c in HOSTILE_BUNDLES]
)
async def test_hostile_ca_bundles_are_refused(
    api: client.ApiClient, case: str, bundle: str, message: str
) -> None:
    proxy = {"url": "https://capsule-proxy.example.com:9001", "caBundle": bundle}
    assert message in await refused(create_tenant(api, f"ca-{case}", {"capsuleProxy": proxy}))


@pytest.mark.parametrize(
    "url", ["http://proxy.example.com", "https://", "https://:9001", "https:///x", "https://a b"]
)
async def test_proxy_urls_need_https_and_a_host(api: client.ApiClient, url: str) -> None:
    await refused(create_tenant(api, "ca-url", {"capsuleProxy": {"url": url}}))


async def test_a_pem_ca_bundle_reaches_the_kubeconfig(api: client.ApiClient) -> None:
    cert, _ = _pem_ca()
    bundle = _b64(cert + cert)  # two certificates
    proxy = {"url": "https://capsule-proxy.example.com:9001", "caBundle": bundle}
    await create_tenants(api, {"ca-valid": {"capsuleProxy": proxy}})

    async def delivered() -> bool:
        secret = await client.CoreV1Api(api).read_namespaced_secret(
            "kubenova-kubeconfigs", "ca-valid-owner"
        )
        kubeconfig = yaml.safe_load(base64.b64decode((secret.data or {})["owner"]))
        cluster = kubeconfig["clusters"][0]["cluster"]
        return bool(cluster["certificate-authority-data"] == bundle)

    await eventually(delivered, deadline=30, what="the kubeconfig with the tenant's CA")


# --- 6. KubeConfigRequest Secrets ---------------------------------------------------

RESERVED_SECRET = "holds the tenant's default kubeconfigs"
BINDING_SECRET = "are Kubenova's"
HOSTILE_REQUESTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("mine", "default-secret", {"secretName": "kubenova-kubeconfigs"}, RESERVED_SECRET),
    ("mine", "own-binding", {"secretName": "mine-token-binding"}, BINDING_SECRET),
    ("mine", "other-binding", {"secretName": "default-owner-token-binding"}, BINDING_SECRET),
    ("mine", "legacy", {"secretName": "default-owner-legacy-token"}, BINDING_SECRET),
    ("mine", "not-a-name", {"secretName": "a..b"}, "should match"),
    ("mine", "key-dot", {"secretName": "x", "secretKey": ".kube"}, "should match"),
    ("mine", "key-long", {"secretName": "x", "secretKey": "k" * 53}, "Too long"),
    ("x" * 64, "long-name", {"secretName": "x"}, "may have at most 63 characters"),
]
HOSTILE_KEYS = ["not a key", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"]


@pytest.mark.parametrize(
    ("name", "case", "delivery", "message"),
    HOSTILE_REQUESTS,
    ids=[c[1] for c in HOSTILE_REQUESTS],
)
async def test_hostile_kubeconfig_requests_are_refused(
    owner_api: client.ApiClient, name: str, case: str, delivery: dict[str, Any], message: str
) -> None:
    body = kcr_body(name, OWNER_NS, role="readonly", delivery=delivery)
    assert message in await refused(create_namespaced(owner_api, "kubeconfigrequests", body))


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=["text", "certificate"])
async def test_recipient_keys_must_be_pem_public_keys(
    owner_api: client.ApiClient, key: str
) -> None:
    body = kcr_body("sealed", OWNER_NS, role="readonly", recipientPublicKey=key)
    body["spec"]["delivery"] = {"mode": "Encrypted"}
    text = await refused(create_namespaced(owner_api, "kubeconfigrequests", body))
    assert "recipientPublicKey must be a PEM public key" in text


async def test_only_the_default_requests_deliver_to_the_default_secret(
    api: client.ApiClient, owner_api: client.ApiClient
) -> None:
    for name in ("default-owner", "default-readonly"):
        body = kcr_body(
            name, OWNER_NS, role="readonly", delivery={"secretName": "kubenova-kubeconfigs"}
        )
        body["metadata"]["namespace"] = PLAIN_NS
        await create_namespaced(api, "kubeconfigrequests", body, dry_run=True)
    body = kcr_body(
        "x" * 63, OWNER_NS, role="readonly", delivery={"secretName": "mine", "secretKey": "k" * 52}
    )
    await create_namespaced(owner_api, "kubeconfigrequests", body)
    await watch_until(api, "kubeconfigrequests", "x" * 63, ready_at_generation, namespace=OWNER_NS)


# --- 7. user metadata on Kubenova objects (manifests/policies/kubenova-metadata-size) --

SIZE_MESSAGE = "labels and annotations of a Kubenova object may total at most 65536 bytes"


@pytest.mark.parametrize(
    "meta",
    [
        {"annotations": {"a": "x" * 70000}},
        {"annotations": {"a": "é" * 33000}},
        {"labels": {f"k{i}": "v" * 63 for i in range(1100)}},
        {"annotations": {"kubenova.io/last-handled-configuration": "x" * 70000}},
        {"annotations": {"a": "x" * 40000}, "labels": {f"k{i}": "v" * 63 for i in range(400)}},
    ],
    ids=["annotation", "multibyte", "labels", "kubenova-annotation", "both"],
)
async def test_oversized_user_metadata_is_refused(
    platform_api: client.ApiClient, owner_api: client.ApiClient, meta: dict[str, Any]
) -> None:
    text = await refused(create_tenant(platform_api, "big", {}, **meta))
    assert SIZE_MESSAGE in text
    project = project_body("big")
    project["metadata"].update(meta)
    assert SIZE_MESSAGE in await refused(create_namespaced(owner_api, "projects", project))
    request = kcr_body("big", OWNER_NS, role="readonly")
    request["metadata"].update(meta)
    text = await refused(create_namespaced(owner_api, "kubeconfigrequests", request))
    assert SIZE_MESSAGE in text


async def test_objects_at_the_metadata_bound_are_handled_and_deletable(
    api: client.ApiClient, platform_api: client.ApiClient, owner_api: client.ApiClient
) -> None:
    """What the policy admits leaves room for the operator's bookkeeping: the objects
    reconcile, can be edited by their users afterwards, and are deleted."""
    meta = {"annotations": {"note": "x" * 60000}, "labels": {"team": "big"}}
    await create_tenant(platform_api, "bigok", {}, dry_run=False, **meta)
    await watch_until(api, "tenants", "bigok", ready_at_generation)
    project = project_body("bigok")
    project["metadata"].update(meta)
    await create_namespaced(owner_api, "projects", project)
    await watch_until(api, "projects", "bigok", ready_at_generation, namespace=OWNER_NS)
    custom = client.CustomObjectsApi(platform_api)
    await custom.patch_cluster_custom_object(  # type: ignore[call-arg]
        GROUP,
        VERSION,
        "tenants",
        "bigok",
        {"metadata": {"labels": {"edited": "yes"}}},
        _content_type="application/merge-patch+json",
    )
    await client.CustomObjectsApi(owner_api).delete_namespaced_custom_object(
        GROUP, VERSION, OWNER_NS, "projects", "bigok"
    )
    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", "bigok")

    async def gone() -> bool:
        try:
            await client.CustomObjectsApi(api).get_cluster_custom_object(
                GROUP, VERSION, "tenants", "bigok"
            )
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(gone, deadline=60, what="tenant bigok deleted")


async def test_objects_over_the_bound_from_before_the_policy_may_shrink(
    cluster: Cluster, platform_api: client.ApiClient
) -> None:
    """An object that already holds more (written before the policy, here by the
    exempt identity: the operator's username, impersonated with system:masters since
    its ClusterRole does not create Tenants) cannot grow, but can shrink and lose its
    finalizers."""
    exempt = await impersonating_client(cluster.kubeconfig, OPERATOR_USERNAME, "system:masters")
    try:
        await create_tenant(exempt, "legacy", {}, dry_run=False, annotations={"a": "x" * 100000})
    finally:
        await exempt.close()
    custom = client.CustomObjectsApi(platform_api)

    def patch(body: dict[str, Any]) -> Any:
        return custom.patch_cluster_custom_object(  # type: ignore[call-arg]
            GROUP, VERSION, "tenants", "legacy", body, _content_type="application/merge-patch+json"
        )

    assert SIZE_MESSAGE in await refused(patch({"metadata": {"annotations": {"b": "grow"}}}))
    await patch({"metadata": {"annotations": {"a": "x" * 90000}}})
    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", "legacy")
    try:
        await patch({"metadata": {"finalizers": None}})
    except ApiException as exc:  # the operator may have been quicker
        assert exc.status == 404, exc.body


# --- 8. service-account-token Secrets (manifests/policies/kubenova-service-account-tokens)


def token_secret(name: str, service_account: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "annotations": {"kubernetes.io/service-account.name": service_account},
        },
        "type": "kubernetes.io/service-account-token",
    }


TOKEN_MESSAGE = "Secrets of type kubernetes.io/service-account-token are not allowed"


@pytest.mark.parametrize("namespace", [OWNER_NS, APPS_NS])
@pytest.mark.parametrize("service_account", ["kubenova-owner", "kubenova-readonly", "default"])
async def test_owner_cannot_mint_a_permanent_token(
    owner_api: client.ApiClient, namespace: str, service_account: str
) -> None:
    core = client.CoreV1Api(owner_api)
    body = token_secret("forever", service_account)
    text = await refused(core.create_namespaced_secret(namespace, raw(body)), status=403)
    assert TOKEN_MESSAGE in text
    # an ordinary Secret is still the owner's to create
    plain = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain"}}
    await core.create_namespaced_secret(namespace, raw(plain), dry_run=DRY_RUN)


async def test_the_kubenova_issued_owner_kubeconfig_is_refused_too(
    cluster: Cluster, api: client.ApiClient, owner_api: client.ApiClient
) -> None:
    async def kubeconfig() -> str:
        secret = await client.CoreV1Api(api).read_namespaced_secret(
            "kubenova-kubeconfigs", OWNER_NS
        )
        return base64.b64decode((secret.data or {})["owner"]).decode()

    issued = await eventually(kubeconfig, deadline=30, what="the default owner kubeconfig")
    token = yaml.safe_load(issued)["users"][0]["user"]["token"]
    result = cluster.token_kubectl(
        token,
        "create",
        "-n",
        OWNER_NS,
        "-f",
        "-",
        stdin=json.dumps(token_secret("forever", "kubenova-owner")),
    )
    assert result.returncode != 0 and TOKEN_MESSAGE in result.stderr, result.stderr


@pytest.mark.usefixtures("plain_ns")
async def test_outside_tenants_the_token_controller_fills_such_secrets(
    api: client.ApiClient,
) -> None:
    """The threat is real: where the policy does not apply, such a Secret gets a token."""
    core = client.CoreV1Api(api)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "probe"}}
    await core.create_namespaced_service_account(PLAIN_NS, raw(account))
    await core.create_namespaced_secret(PLAIN_NS, raw(token_secret("probe-token", "probe")))

    async def filled() -> bool:
        secret = await core.read_namespaced_secret("probe-token", PLAIN_NS)
        return bool((secret.data or {}).get("token"))

    await eventually(filled, deadline=30, what="the token controller to fill the Secret")


# --- 9. Projects and requests only in the owner namespace (kubenova-owner-namespace) ---


OWNER_NAMESPACE_MESSAGE = f"belong in its owner namespace {OWNER_NS}, not in"


async def test_projects_and_requests_only_in_the_owner_namespace(
    api: client.ApiClient, owner_api: client.ApiClient
) -> None:
    """The tenant owner's token may write in every tenant namespace, but a Project or
    a KubeConfigRequest anywhere but <tenant>-owner (where it would only be Stalled,
    outside credentials.maxRequests and maxProjects) is refused with the reason; in
    the owner namespace both are accepted, and outside tenants the policy is silent."""
    await create_namespaced(owner_api, "projects", project_body("placed"))
    placed = await watch_until(api, "projects", "placed", ready_at_generation, namespace=OWNER_NS)
    elsewhere = [APPS_NS, *placed["status"]["namespaces"]]
    for namespace in elsewhere:
        for plural, body in (
            ("projects", project_body("stray")),
            ("kubeconfigrequests", kcr_body("stray", OWNER_NS, role="readonly")),
        ):
            body["metadata"]["namespace"] = namespace
            text = await refused(create_namespaced(owner_api, plural, body), status=403)
            assert OWNER_NAMESPACE_MESSAGE in text and namespace in text, text
    await create_namespaced(
        owner_api, "kubeconfigrequests", kcr_body("placed", OWNER_NS, role="readonly"), dry_run=True
    )
    stray = project_body("stray")
    stray["metadata"]["namespace"] = PLAIN_NS
    await create_namespaced(api, "projects", stray, dry_run=True)
