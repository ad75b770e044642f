"""Which projects fit: standing claims are never squeezed by another project's change."""

from __future__ import annotations

from decimal import Decimal

from kubenova_operator.api.project import ProjectSpec
from kubenova_operator.api.tenant import TenantSpec
from kubenova_operator.resources.budget import ProjectInput, admit_projects
from kubenova_operator.resources.ownership import NamespaceRecord


def project(name: str, cpu: str, envs: int = 0, standing: str | None = None) -> ProjectInput:
    spec = ProjectSpec.model_validate(
        {
            "environments": [{"name": f"e{i}"} for i in range(envs)],
            "budget": {"hard": {"requests.cpu": cpu}},
        }
    )
    held = {"requests.cpu": Decimal(standing)} if standing is not None else {}
    return ProjectInput(name=name, spec=spec, standing=held, built=standing is not None)


UID = "0b7c3a52-8a4e-4f57-9d1b-3f1a2c4d5e6f"
TENANT = TenantSpec.model_validate(
    {"budget": {"hard": {"requests.cpu": "4"}, "maxProjects": 3, "maxNamespaces": 6}}
)


def test_projects_fit_in_order() -> None:
    decisions, total = admit_projects(
        "acme", UID, TENANT, [project("a", "1", envs=2), project("b", "2"), project("c", "1")], {}
    )
    assert [d.admitted for d in decisions] == [True, True, False]
    assert decisions[2].reason == "BudgetExceeded"
    assert "requests.cpu: asks 1, other projects hold 4, tenant budget is 4 (0 left)" in (
        decisions[2].message
    )
    assert total == {"requests.cpu": Decimal(4)}


def test_a_grown_project_cannot_squeeze_a_newer_one() -> None:
    # a (older) held 1 and now asks 3; b holds 2: a's change must be refused, b stays.
    decisions, total = admit_projects(
        "acme", UID, TENANT, [project("a", "3", standing="1"), project("b", "2", standing="2")], {}
    )
    assert [(d.name, d.admitted) for d in decisions] == [("a", False), ("b", True)]
    assert decisions[0].claim == {"requests.cpu": Decimal(1)}  # keeps what it had
    assert total == {"requests.cpu": Decimal(3)}


def test_lowered_tenant_budget_keeps_unchanged_projects() -> None:
    small = TenantSpec.model_validate({"budget": {"hard": {"requests.cpu": "1"}}})
    decisions, total = admit_projects("acme", UID, small, [project("a", "2", standing="2")], {})
    assert decisions[0].admitted
    assert total == {"requests.cpu": Decimal(2)}  # over-committed: the tenant reports it


def test_limits_names_and_conflicts() -> None:
    decisions, _ = admit_projects(
        "acme",
        UID,
        TENANT,
        [project("a", "0"), project("b", "0"), project("c", "0"), project("d", "0")],
        {},
    )
    assert decisions[3].reason == "ProjectLimitExceeded"
    decisions, _ = admit_projects("acme", UID, TENANT, [project("a", "0", envs=5)], {})
    assert decisions[0].reason == "NamespaceLimitExceeded"
    decisions, _ = admit_projects("acme", UID, TENANT, [project("x" * 60, "0")], {})
    assert decisions[0].reason == "NameTooLong"
    hand_made = {"acme-web": NamespaceRecord()}
    decisions, _ = admit_projects("acme", UID, TENANT, [project("web", "0")], hand_made)
    assert decisions[0].reason == "NamespaceConflict"
    assert "not created by Kubenova" in decisions[0].message
    own = {"acme-web": NamespaceRecord("acme", "web", UID, managed=True)}
    decisions, _ = admit_projects("acme", UID, TENANT, [project("web", "0")], own)
    assert decisions[0].admitted  # its own namespace


def test_project_service_accounts_must_be_in_namespaces_the_tenant_has() -> None:
    """A refused decoy project asking for another tenant's namespace (ab-cd-apps is
    tenant ab-cd's) does not make that namespace's ServiceAccounts nameable."""
    tenant = TenantSpec()
    decoy = ProjectSpec.model_validate({"environments": [{"name": "apps"}]})
    bridge = ProjectSpec.model_validate(
        {
            "developers": [
                {"kind": "ServiceAccount", "name": "kubenova-owner", "namespace": "ab-cd-apps"}
            ]
        }
    )
    own = ProjectSpec.model_validate(
        {"developers": [{"kind": "ServiceAccount", "name": "ci", "namespace": "ab-apps"}]}
    )
    records = {"ab-cd-apps": NamespaceRecord("ab-cd", None, "uid-ab-cd", managed=True)}
    decisions, _ = admit_projects(
        "ab",
        UID,
        tenant,
        [ProjectInput("cd", decoy), ProjectInput("bridge", bridge), ProjectInput("own", own)],
        records,
    )
    assert [d.reason for d in decisions] == ["NamespaceConflict", "SubjectNotAllowed", "Admitted"]
