"""The budget invariant, for any projects: no namespace of a tenant is unbounded in
anything the tenant's budget names, and the workload namespaces' quotas together never
exceed the budget, whatever the projects ask (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubenova_operator.api.project import ProjectSpec
from kubenova_operator.api.tenant import MAX_REQUESTS, TenantSpec
from kubenova_operator.resources.budget import ProjectInput, admit_projects
from kubenova_operator.resources.project import environment_quotas
from kubenova_operator.resources.quantity import canonical_resource, parse_quantity
from kubenova_operator.resources.quota import (
    OWNER_NAMESPACE_UNCHARGED,
    REQUESTS_COUNT,
    owner_namespace_hard,
)
from kubenova_operator.resources.tenant import apps_quota

UID = "7d1f3e9a-0000-4000-8000-000000000001"
KEYS = [
    "requests.cpu",
    "cpu",
    "limits.cpu",
    "requests.memory",
    "memory",
    "pods",
    "count/secrets",
    "count/kubeconfigrequests.kubenova.io",
]
SUFFIXES = ["", "m", "k", "M", "G", "Ki", "Mi", "Gi"]

quantities = st.builds(
    lambda n, s: f"{n}{s}", st.integers(min_value=0, max_value=5000), st.sampled_from(SUFFIXES)
)


def hard_maps(keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    # A map never names both an alias and its canonical form (admission refuses it).
    return st.dictionaries(st.sampled_from(keys), quantities, max_size=4).map(
        lambda d: {
            k: v
            for k, v in d.items()
            if canonical_resource(k) == k or canonical_resource(k) not in d
        }
    )


@st.composite
def project_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["budget"] = {"hard": draw(hard_maps(KEYS))}
    envs = draw(st.integers(min_value=0, max_value=3))
    if envs:
        spec["environments"] = [
            {"name": f"e{i}", **({"hard": draw(hard_maps(KEYS))} if draw(st.booleans()) else {})}
            for i in range(envs)
        ]
    return spec


@st.composite
def standing(draw: st.DrawFn, budget: dict[str, str]) -> dict[str, Decimal]:
    """A standing claim that was once admitted: at most the budget (a budget lowered
    since is allowed too, and is reported, not enforced by taking)."""
    return {
        canonical_resource(k): parse_quantity(v) * Decimal(draw(st.sampled_from(["0", "0.5", "1"])))
        for k, v in budget.items()
        if draw(st.booleans())
    }


@settings(max_examples=300, deadline=None)
@given(
    budget=hard_maps(KEYS).filter(bool),
    specs=st.lists(project_specs(), max_size=5),
    max_requests=st.integers(2, MAX_REQUESTS),
)
def test_workload_quotas_never_exceed_the_tenant_budget(
    budget: dict[str, str], specs: list[dict[str, Any]], max_requests: int
) -> None:
    tenant = TenantSpec.model_validate({"budget": {"hard": budget}})
    projects = [
        ProjectInput(name=f"p{i}", spec=ProjectSpec.model_validate(s)) for i, s in enumerate(specs)
    ]
    decisions, claimed = admit_projects("t", UID, tenant, projects, {})
    quotas: list[dict[str, str | int]] = [dict(apps_quota(tenant, claimed))]
    for decision, project in zip(decisions, projects, strict=True):
        if decision.admitted:
            quotas += [h for _, _, h in environment_quotas(project.name, "t", project.spec, budget)]
    for named, limit in budget.items():
        key = canonical_resource(named)
        # Every workload namespace is bounded in every resource the budget names...
        assert all(key in hard for hard in quotas), (key, quotas)
        # ...and together they never hold more than the budget.
        total = sum((parse_quantity(hard[key]) for hard in quotas), Decimal(0))
        assert total <= parse_quantity(limit), (key, total, limit)
    # The owner namespace runs nothing and holds none of it but uncharged object counts,
    # and as many KubeConfigRequests as the tenant's credentials allow, whatever the
    # budget says of them.
    owner = owner_namespace_hard(budget, max_requests)
    assert owner["pods"] == "0"
    for key in budget:
        if canonical_resource(key) not in OWNER_NAMESPACE_UNCHARGED:
            assert owner[canonical_resource(key)] == "0"
    assert owner[REQUESTS_COUNT] == str(max_requests)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), budget=hard_maps(["requests.cpu", "limits.memory"]).filter(bool))
def test_standing_claims_are_kept_and_changes_must_fit(
    data: st.DataObject, budget: dict[str, str]
) -> None:
    """Projects already holding budget keep it; only a change has to fit in what is
    left, so the total claimed grows past the budget only by what was standing."""
    tenant = TenantSpec.model_validate({"budget": {"hard": budget}})
    specs = data.draw(st.lists(project_specs(), min_size=1, max_size=4))
    held = [data.draw(standing(budget)) for _ in specs]
    projects = [
        ProjectInput(f"p{i}", ProjectSpec.model_validate(s), standing=h, built=bool(h))
        for i, (s, h) in enumerate(zip(specs, held, strict=True))
    ]
    decisions, claimed = admit_projects("t", UID, tenant, projects, {})
    standing_total: dict[str, Decimal] = {}
    for h in held:
        for k, v in h.items():
            standing_total[k] = standing_total.get(k, Decimal(0)) + v
    for key, limit in budget.items():
        cap = max(parse_quantity(limit), standing_total.get(key, Decimal(0)))
        assert claimed.get(key, Decimal(0)) <= cap
    for decision, h in zip(decisions, held, strict=True):
        if not decision.admitted:
            assert decision.claim == h  # a refused change keeps what it had


@given(value=st.sampled_from(["-1", "-4", "-0.5", "-1Gi", "-100m"]))
def test_negative_quantities_are_refused_by_the_arithmetic_too(value: str) -> None:
    tenant = TenantSpec.model_validate({"budget": {"hard": {"requests.cpu": "8"}}})
    bad = ProjectSpec.model_validate({"budget": {"hard": {"requests.cpu": value}}})
    good = ProjectSpec.model_validate({"budget": {"hard": {"requests.cpu": "8"}}})
    decisions, claimed = admit_projects(
        "t", UID, tenant, [ProjectInput("bad", bad), ProjectInput("good", good)], {}
    )
    assert decisions[0].reason == "InvalidBudget"
    assert decisions[1].admitted
    assert claimed["requests.cpu"] == Decimal(8)
