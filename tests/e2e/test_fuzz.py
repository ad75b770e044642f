"""Property-based: whatever spec a Tenant or Project is written with, the API server
refuses it with a message, or admits it and the operator reports on it.

Specs are drawn from strategies written after the CRDs' schemas, biased to boundary
values: lengths at and over their limits, quantities with every suffix, negative, zero
and huge, odd resource names, system: subjects, reserved label keys. Each is written to
the real API server (Tenants by the admin, Projects by a tenant owner) and then:

- refused: a 4xx with a message; or
- admitted: within DEADLINE seconds the object has a Ready condition at its generation
  whose reason is one of DOCUMENTED_REASONS, the operator is still running, and its log
  has no traceback.

Misbehaviours are collected rather than raised, so one run lists them all (and nothing
is shrunk at 20 s an example); test_no_admitted_spec_misbehaved reports them. A valid
sibling Tenant created before the run must still reconcile a spec edit made after it.

Examples are derandomized (the same ones every run, no example database); the default
budget keeps the module to a few minutes. KUBENOVA_FUZZ_EXAMPLES (make fuzz) raises it.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from kubenova_e2e.pki import CA
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubenova_operator.api import validation as V

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    api_message,
    condition,
    create_tenants,
    merge_patch,
    ready_at_generation,
    tenant_body,
    token_api_client,
    watch_until,
)

DOCUMENTED_REASONS: dict[str, set[str]] = {
    "Tenant": {
        "Reconciled",
        "NamespaceConflict",
        "ApplyFailed",
        "InvalidSpec",
        "Progressing",
        "NamespaceTerminating",
    },
    "Project": {
        "Reconciled",
        "BudgetExceeded",
        "NameTooLong",
        "NamespaceConflict",
        "ProjectLimitExceeded",
        "NamespaceLimitExceeded",
        "TenantNotFound",
        "TenantDeleting",
        "SubjectNotAllowed",
        "ApplyFailed",
        "InvalidBudget",
        "Progressing",
    },
}
EXAMPLES = int(os.environ.get("KUBENOVA_FUZZ_EXAMPLES", "150"))
DEADLINE = 20.0
# After this many admitted examples in a row that got no documented Ready condition,
# the operator is taken to be wedged: later examples are still written (admission is
# still checked) but not waited for.
WEDGED_AFTER = 3
PROJECT_TENANT = "fzp"
SIBLING = "fz-sibling"

FUZZ = settings(
    max_examples=max(1, EXAMPLES // 2),
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# --- strategies ---------------------------------------------------------------------

_names = itertools.count()


def record(
    required: Mapping[str, st.SearchStrategy[Any]],
    optional: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with these fields, and any of the optional ones."""
    return st.fixed_dictionaries(dict(required), optional=dict(optional or {}))


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}-{os.getpid() % 1000}"


SUFFIXES = ["", "m", "n", "u", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
SUFFIXES += ["e3", "E3", "e-3", "e99", "e100", "K", "mi", "e"]
quantity_strings = st.one_of(
    st.builds(
        lambda whole, frac, suffix: f"{whole}{frac}{suffix}",
        st.sampled_from(["0", "1", "2", "8", "100", "512", "9223372036854775", "-1", ""]),
        st.sampled_from(["", ".5", ".", ".000000001", ".0001"]),
        st.sampled_from(SUFFIXES),
    ),
    st.sampled_from(
        [
            "1e30",
            "99999999999Ei",
            "1e2147483647",
            "9223372036854776",
            "8Pi",
            "9Pi",
            "abc",
            "0" * 33,
            "+1",
            "-0",
            " 1",
            "1 ",
        ]
    ),
)
quantity_ints = st.one_of(
    st.integers(min_value=-3, max_value=10_000),
    st.sampled_from([V.MAX_QUANTITY, V.MAX_QUANTITY + 1, 2**63 - 1, -(2**31)]),
)
quantity = st.one_of(quantity_strings, quantity_ints)
small_quantity = st.sampled_from(["100m", "500m", "1", "2", 4, "128Mi", "512Mi", "1Gi", "0"])

QUOTA_KEYS = [
    *sorted(V.STANDARD_QUOTA_RESOURCES),
    "requests.nvidia.com/gpu",
    "nvidia.com/gpu",
    "count/pods",
    "count/deployments.apps",
    "hugepages-2Mi",
    "requests.hugepages-2Mi",
    "bogus-resource",
    "requests.bogus",
    "Pods",
    "storage",
    "quotas",
    "a/b/c",
    "",
    "example.com/" + "x" * 63,
    "example.com/" + "x" * 64,
    "x" * 129,
    "cpu ",
    "ünï",
]
quota_key = st.one_of(st.sampled_from(QUOTA_KEYS), st.text(max_size=12))
GOOD_QUOTA_KEYS = ["requests.cpu", "limits.cpu", "requests.memory", "pods", "count/pods"]
# Valid maps half the time, so that admitted specs reach the operator's own checks
# (budget sums, subjects outside the tenant) often enough.
hard_map = st.one_of(
    st.dictionaries(
        st.sampled_from(GOOD_QUOTA_KEYS), st.sampled_from(["1", "2", 8, "0", "3"]), max_size=3
    ),
    st.dictionaries(quota_key, st.one_of(small_quantity, quantity), max_size=5),
)

CONTAINER_KEYS = ["cpu", "memory", "ephemeral-storage", "hugepages-2Mi", "nvidia.com/gpu"]
CONTAINER_KEYS += ["pods", "requests.cpu", "example.com/" + "r" * 40]
container_map = st.dictionaries(
    st.sampled_from(CONTAINER_KEYS), st.one_of(small_quantity, quantity), max_size=3
)
limits = record(
    {}, optional={"default": container_map, "defaultRequest": container_map, "max": container_map}
)

SUBJECT_NAMES = [
    "alice",
    "alice@example.com",
    "team:devs",
    "deployer",
    "ci.deployer",
    "system:masters",
    "system:authenticated",
    "system:unauthenticated",
    "system:anonymous",
    "system:serviceaccounts",
    "system:serviceaccounts:kube-system",
    "system:serviceaccount:kube-system:default",
    "system:nodes",
    "System:masters",
    "Deployer",
    "a_b",
    "x" * 253,
    "x" * 254,
    "",
]
subject = record(
    {
        "kind": st.sampled_from(["User", "Group", "ServiceAccount", "ServiceAccount", "Robot"]),
        "name": st.sampled_from(SUBJECT_NAMES),
    },
    optional={
        "namespace": st.sampled_from(
            [f"{PROJECT_TENANT}-owner", "kube-system", "other", "x" * 63, "x" * 64, "Bad"]
        )
    },
)
valid_subject = st.sampled_from(
    [
        {"kind": "User", "name": "alice@example.com"},
        {"kind": "Group", "name": "team:devs"},
        {"kind": "ServiceAccount", "name": "deployer", "namespace": f"{PROJECT_TENANT}-owner"},
        # valid at admission; for a Project, outside its tenant: SubjectNotAllowed
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "kube-system"},
    ]
)
subjects = st.one_of(st.lists(valid_subject, max_size=2), st.lists(subject, max_size=3))

LABEL_KEYS = [
    "team",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "example.com/x",
    "kubenova.io/tenant",
    "team.kubenova.io/x",
    "capsule.clastix.io/tenant",
    "pod-security.kubernetes.io/enforce",
    "kubernetes.io/metadata.name",
    "node.kubernetes.io/x",
    "x.k8s.io/y",
    "namespace.oam.dev/env",
    "usage.oam.dev/runtime",
    "x" * 63,
    "x" * 64,
    "a" * 253 + "/x",
    "a" * 254 + "/x",
    "bad key",
    "-x",
    "Example.com/x",
    "",
]
LABEL_VALUES = ["", "ok", "x" * 63, "x" * 64, "bad value", "-x", "ünï"]
valid_labels = st.dictionaries(
    st.sampled_from(["team", "app.kubernetes.io/part-of", "example.com/x"]),
    st.sampled_from(["", "ok", "x" * 63]),
    max_size=2,
)
label_maps = st.dictionaries(
    st.one_of(st.sampled_from(LABEL_KEYS), st.text(max_size=8)),
    st.sampled_from(LABEL_VALUES),
    max_size=4,
)
annotation_maps = st.dictionaries(
    st.one_of(st.sampled_from(LABEL_KEYS), st.text(max_size=8)),
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(["x" * 16000, "é" * 9000, "x" * 16384, "\x00\x01" * 100]),
    ),
    max_size=3,
)
label_maps = st.one_of(valid_labels, label_maps)
namespace_metadata = record({}, optional={"labels": label_maps, "annotations": annotation_maps})


def _ca_bundle() -> str:
    cert = CA.create("fuzz-proxy-ca").cert.public_bytes(serialization.Encoding.PEM)
    return base64.b64encode(cert).decode()


CA_BUNDLES = [_ca_bundle(), "garbage!", base64.b64encode(b"not a certificate").decode(), ""]
capsule_proxy = record(
    {
        "url": st.sampled_from(
            ["https://proxy.example.com:9001", "http://proxy.example.com", "https://", "x"]
        )
    },
    optional={"caBundle": st.sampled_from(CA_BUNDLES)},
)
ttl = st.sampled_from([599, 600, 3600, 28800, 604800, 604801])
dns_label_at_bounds = st.sampled_from(["team", "a" * 63, "a" * 64, "Gold", "-x", ""])

tenant_specs = record(
    {},
    optional={
        "displayName": st.sampled_from(["Acme", "x" * 128, "x" * 129, "ünïcode ✓"]),
        "plan": dns_label_at_bounds,
        "owners": subjects,
        "viewers": subjects,
        "namespaceMetadata": namespace_metadata,
        "budget": record(
            {},
            optional={
                "hard": hard_map,
                "maxProjects": st.sampled_from([-1, 0, 1, 1000, 1001]),
                "maxNamespaces": st.sampled_from([1, 2, 3, 10000, 10001]),
            },
        ),
        "limits": limits,
        "networkIsolation": st.sampled_from(["Strict", "Tenant", "None", "Open"]),
        "podSecurity": record(
            {},
            optional={
                "enforce": st.sampled_from(["privileged", "baseline", "restricted", "high"]),
                "warn": st.sampled_from(["privileged", "baseline", "restricted"]),
            },
        ),
        "credentials": record({}, optional={"defaultTTLSeconds": ttl, "maxTTLSeconds": ttl}),
        "capsuleProxy": capsule_proxy,
        "deletionPolicy": st.sampled_from(["Retain", "Delete", "Destroy"]),
        "driftPolicy": st.sampled_from(["Heal", "Report", "Ignore"]),
    },
)

environment = record(
    {"name": st.sampled_from(["dev", "prod", "staging", "a" * 20, "a" * 21, "Dev", "-x", ""])},
    optional={"hard": hard_map},
)
project_specs = record(
    {},
    optional={
        "displayName": st.sampled_from(["Shop", "x" * 128, "x" * 129]),
        "environments": st.lists(environment, max_size=4),
        "budget": record({}, optional={"hard": hard_map}),
        "developers": subjects,
        "viewers": subjects,
        "namespaceMetadata": namespace_metadata,
        "delivery": record(
            {},
            optional={
                "revisionLimit": st.sampled_from([0, 1, 10, 100, 101]),
                "defaultWorkflow": st.booleans(),
            },
        ),
        "deletionPolicy": st.sampled_from(["Retain", "Delete", "Keep"]),
    },
)
# Project name lengths: short, long, and the longest a Project may have (61; with the
# tenant 'fzp' its namespace no longer fits: NameTooLong).
project_name_length = st.sampled_from([0, 0, 0, 40, 61])


# --- the run ------------------------------------------------------------------------


@dataclass
class Run:
    """What the fuzz examples saw, for the final report."""

    operator: OperatorProcess
    log_offset: int
    refused: int = 0
    ready: dict[str, int] = field(default_factory=dict)
    misbehaved: list[str] = field(default_factory=list)
    consecutive_failures: int = 0
    unwaited: int = 0

    def new_log(self) -> str:
        text = self.operator.log.read_text(errors="replace") if self.operator.log.exists() else ""
        fresh, self.log_offset = text[self.log_offset :], len(text)
        return fresh

    @property
    def wedged(self) -> bool:
        return self.consecutive_failures >= WEDGED_AFTER or not self.operator.alive()


@pytest.fixture(scope="module")
async def fuzz_run(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> AsyncIterator[Run]:
    budget = {
        "hard": {"requests.cpu": "2", "limits.cpu": "8", "requests.memory": "8Gi", "pods": 50},
        "maxNamespaces": 40,
    }
    await create_tenants(
        api,
        {
            SIBLING: {"budget": {"hard": {"pods": 5}}},
            PROJECT_TENANT: {"budget": budget, "deletionPolicy": "Delete"},
        },
    )
    text = operator.log.read_text(errors="replace") if operator.log.exists() else ""
    yield Run(operator, len(text))


@pytest.fixture(scope="module")
async def fuzz_owner(cluster: Cluster, fuzz_run: Run) -> AsyncIterator[client.ApiClient]:
    token = cluster.create_token("kubenova-owner", f"{PROJECT_TENANT}-owner", seconds=3600)
    owner = await token_api_client(cluster, token)
    yield owner
    await owner.close()


def _documented(kind: str, obj: dict[str, Any]) -> bool:
    ready = condition(obj, "Ready")
    return bool(
        ready
        and ready.get("observedGeneration") == obj["metadata"]["generation"]
        and ready.get("reason") in DOCUMENTED_REASONS[kind]
    )


Step = Callable[[], Awaitable[Any]]


def _last_error(log: str) -> str:
    """Where the first traceback in `log` was raised, and its exception line."""
    lines = log[log.index("Traceback") :].splitlines()
    frames = [line.strip() for line in lines if line.strip().startswith("File ")]
    error = next(
        (line for line in lines[1:] if line and not line.startswith((" ", "Traceback"))), "?"
    )
    return f"{error} (at {frames[-1] if frames else '?'})"


async def _check(
    run: Run, kind: str, spec: dict[str, Any], *, write: Step, wait: Step, delete: Step
) -> None:
    """One example: write it, then check what became of it; misbehaviour is recorded."""
    shown = json.dumps(spec, ensure_ascii=False)
    shown = shown if len(shown) < 600 else shown[:600] + "..."
    try:
        await write()
    except ApiException as exc:
        assert 400 <= exc.status < 500, f"{kind} {shown}: {exc.status} {exc.body!r}"
        assert exc.status != 409, f"{kind} {shown}: names are unique: {exc.body!r}"
        assert api_message(exc).strip(), f"{kind} {shown}: refused without a message"
        run.refused += 1
        return
    problem = None
    if run.wedged:
        run.unwaited += 1
        problem = "not waited for: the operator was wedged or gone"
    else:
        try:
            obj = await wait()
            reason = str(condition(obj, "Ready")["reason"])  # type: ignore[index]
            run.ready[f"{kind}/{reason}"] = run.ready.get(f"{kind}/{reason}", 0) + 1
            run.consecutive_failures = 0
        except AssertionError as exc:
            run.consecutive_failures += 1
            problem = f"no documented Ready condition within {DEADLINE:.0f}s: {exc}"[:800]
    if not run.operator.alive():
        problem = (problem or "") + " | the operator exited"
    if "Traceback" in (log := run.new_log()):
        problem = (problem or "") + " | traceback in the operator log: " + _last_error(log)
    if problem:
        run.misbehaved.append(f"{kind} {shown}\n    -> {problem}")
    try:
        await delete()
    except ApiException as exc:
        if exc.status != 404:
            raise


@FUZZ
@given(spec=tenant_specs)
@example(spec={"budget": {"hard": {"requests.cpu": "1.5Gi", "count/pods": "2Ki"}}})
@example(spec={"limits": {"max": {"cpu": "500m", "nvidia.com/gpu": 1}}})
async def test_tenant_specs(fuzz_run: Run, api: client.ApiClient, spec: dict[str, Any]) -> None:
    name = unique("fzt")
    custom = client.CustomObjectsApi(api)
    await _check(
        fuzz_run,
        "Tenant",
        spec,
        write=lambda: custom.create_cluster_custom_object(
            GROUP, VERSION, "tenants", tenant_body(name, **spec)
        ),
        wait=lambda: watch_until(
            api, "tenants", name, lambda o: _documented("Tenant", o), deadline=DEADLINE
        ),
        delete=lambda: custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", name),
    )


@FUZZ
@given(spec=project_specs, length=project_name_length)
@example(spec={"budget": {"hard": {"requests.cpu": 8}}}, length=0)  # BudgetExceeded
@example(spec={"environments": [{"name": "a" * 20}]}, length=40)  # NameTooLong
@example(
    spec={"developers": [{"kind": "ServiceAccount", "name": "x", "namespace": "kube-system"}]},
    length=0,
)
async def test_project_specs(
    fuzz_run: Run,
    api: client.ApiClient,
    fuzz_owner: client.ApiClient,
    spec: dict[str, Any],
    length: int,
) -> None:
    name = unique("p").ljust(length, "x")
    namespace = f"{PROJECT_TENANT}-owner"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Project",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    owner = client.CustomObjectsApi(fuzz_owner)
    await _check(
        fuzz_run,
        "Project",
        spec,
        write=lambda: owner.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "projects", body
        ),
        wait=lambda: watch_until(
            api,
            "projects",
            name,
            lambda o: _documented("Project", o),
            namespace=namespace,
            deadline=DEADLINE,
        ),
        delete=lambda: owner.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "projects", name
        ),
    )


async def test_no_admitted_spec_misbehaved(fuzz_run: Run) -> None:
    summary = (
        f"{fuzz_run.refused} refused at admission; Ready reasons of the admitted: "
        f"{dict(sorted(fuzz_run.ready.items()))}; {len(fuzz_run.misbehaved)} misbehaved"
        f" ({fuzz_run.unwaited} not waited for)"
    )
    print(summary)
    assert fuzz_run.misbehaved == [], summary + "\n" + "\n".join(fuzz_run.misbehaved)


async def test_a_valid_sibling_still_reconciles_after_the_run(
    fuzz_run: Run, api: client.ApiClient
) -> None:
    started = time.monotonic()
    await merge_patch(api, "tenants", SIBLING, {"spec": {"budget": {"hard": {"pods": 6}}}})
    obj = await watch_until(api, "tenants", SIBLING, ready_at_generation, deadline=60)
    assert obj["metadata"]["generation"] >= 2
    assert fuzz_run.operator.alive(), fuzz_run.operator.tail()
    print(f"sibling reconciled its edit in {time.monotonic() - started:.1f}s")
