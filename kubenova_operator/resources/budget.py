"""Which Projects fit in their tenant: budget, project and namespace limits, names.

The rule that keeps running projects safe: a project's *standing* claim (what its
quotas hold now, from its status) is always counted, and only a *change* (a new
project, a bigger budget, more environments) has to fit in what is left. So editing
one project, or lowering the tenant's budget, never takes anything from another
project: the change is refused with a reason, and the tenant reports the over-commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ..api.common import MAX_NAMESPACE_LENGTH
from ..api.project import ProjectSpec, project_namespaces
from ..api.tenant import TenantSpec
from .project import project_claim
from .quantity import exceeding, format_quantity


@dataclass(frozen=True)
class ProjectInput:
    name: str
    spec: ProjectSpec
    standing: Mapping[str, Decimal] = field(default_factory=dict)
    built: bool = False  # whether its namespaces were built before


@dataclass(frozen=True)
class Decision:
    name: str
    admitted: bool
    reason: str
    message: str
    claim: dict[str, Decimal]  # what the project holds after this decision
    namespaces: list[str]


def _add(total: dict[str, Decimal], part: Mapping[str, Decimal], sign: int = 1) -> None:
    for key, value in part.items():
        total[key] = total.get(key, Decimal(0)) + sign * value


def _describe_over(
    over: Mapping[str, tuple[Decimal, Decimal]],
    own: Mapping[str, Decimal],
    total: Mapping[str, Decimal],
) -> str:
    parts = []
    for key, (want, have) in sorted(over.items()):
        others = want - own.get(key, Decimal(0))
        parts.append(
            f"{key}: asks {format_quantity(own.get(key, Decimal(0)))}, other projects hold "
            f"{format_quantity(others)}, tenant budget is {format_quantity(have)} "
            f"({format_quantity(max(have - others, Decimal(0)))} left)"
        )
    return "; ".join(parts)


def admit_projects(
    tenant: str,
    spec: TenantSpec,
    projects: Sequence[ProjectInput],
    namespace_owners: Mapping[str, tuple[str | None, str | None]],
) -> tuple[list[Decision], dict[str, Decimal]]:
    """Decide each project in order (oldest first); return the decisions and the total
    claimed of the tenant budget.

    `namespace_owners` maps existing namespace names to the (tenant, project) labels
    Kubenova put on them (None, None for a namespace Kubenova does not manage).
    """
    total: dict[str, Decimal] = {}
    for project in projects:
        _add(total, project.standing)
    decisions: list[Decision] = []
    admitted_count = 0
    namespace_count = 2  # the tenant's owner and apps namespaces
    taken: set[str] = set()
    for project in projects:
        names = project_namespaces(tenant, project.name, project.spec)
        claim = project_claim(project.name, tenant, project.spec)

        def refuse(
            reason: str, message: str, project: ProjectInput = project, names: list[str] = names
        ) -> None:
            decisions.append(
                Decision(
                    project.name,
                    False,
                    reason,
                    message,
                    dict(project.standing),
                    names if project.built else [],
                )
            )

        too_long = [ns for ns in names if len(ns) > MAX_NAMESPACE_LENGTH]
        if too_long:
            refuse(
                "NameTooLong",
                f"namespace name {too_long[0]!r} is longer than "
                f"{MAX_NAMESPACE_LENGTH} characters; use a shorter project or "
                "environment name",
            )
            continue
        clash = next((ns for ns in names if ns in taken), None)
        if clash is None:
            clash = next(
                (
                    ns
                    for ns in names
                    if ns in namespace_owners and namespace_owners[ns] != (tenant, project.name)
                ),
                None,
            )
        if clash is not None:
            owner = namespace_owners.get(clash, (None, None))
            whose = (
                f"tenant {owner[0]!r}, project {owner[1]!r}"
                if owner[0]
                else "nobody in Kubenova (it was created by hand)"
            )
            refuse(
                "NamespaceConflict",
                f"namespace {clash!r} already exists and belongs "
                f"to {whose}; Kubenova does not adopt it",
            )
            continue
        if spec.budget.max_projects is not None and admitted_count >= spec.budget.max_projects:
            refuse(
                "ProjectLimitExceeded",
                f"tenant {tenant!r} allows {spec.budget.max_projects} projects and has that many",
            )
            continue
        if (
            spec.budget.max_namespaces is not None
            and namespace_count + len(names) > spec.budget.max_namespaces
        ):
            refuse(
                "NamespaceLimitExceeded",
                f"the project needs {len(names)} namespaces; "
                f"tenant {tenant!r} has {namespace_count} of its "
                f"{spec.budget.max_namespaces}",
            )
            continue
        if claim != dict(project.standing):
            after = dict(total)
            _add(after, project.standing, -1)
            _add(after, claim)
            over = exceeding(spec.budget.hard, after)
            if over:
                refuse(
                    "BudgetExceeded",
                    "the project's budget does not fit in tenant "
                    f"{tenant!r}: " + _describe_over(over, claim, after),
                )
                continue
            total = after
        admitted_count += 1
        namespace_count += len(names)
        taken.update(names)
        decisions.append(Decision(project.name, True, "Admitted", "", claim, names))
    return decisions, total
