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

from ..api.common import MAX_NAMESPACE_LENGTH, SubjectKind
from ..api.project import ProjectSpec, project_namespaces
from ..api.tenant import TenantSpec, apps_namespace, owner_namespace
from .ownership import NamespaceRecord, namespace_conflict
from .project import project_claim
from .quantity import exceeding, format_quantity, invalid_quantities


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


def _foreign_service_accounts(spec: ProjectSpec, allowed: set[str]) -> list[str]:
    return [
        f"{s.namespace}/{s.name}"
        for s in (*spec.developers, *spec.viewers)
        if s.kind == SubjectKind.SERVICE_ACCOUNT and s.namespace not in allowed
    ]


def _names_service_accounts(spec: ProjectSpec) -> bool:
    return any(s.kind == SubjectKind.SERVICE_ACCOUNT for s in (*spec.developers, *spec.viewers))


def _invalid_budget(spec: ProjectSpec) -> list[str]:
    hards = [spec.budget.hard, *(e.hard for e in spec.environments if e.hard is not None)]
    return [problem for hard in hards for problem in invalid_quantities(hard)]


def _first_conflict(
    names: list[str],
    *,
    tenant: str,
    tenant_uid: str,
    project: str,
    taken: set[str],
    namespaces: Mapping[str, NamespaceRecord],
) -> str | None:
    """Why one of the project's namespaces is not its to use, if one is not."""
    for ns in names:
        if ns in taken:
            return f"namespace {ns!r} is also another project's of this tenant"
        why = namespace_conflict(
            ns, tenant=tenant, tenant_uid=tenant_uid, project=project, record=namespaces.get(ns)
        )
        if why is not None:
            return why
    return None


def admit_projects(
    tenant: str,
    tenant_uid: str,
    spec: TenantSpec,
    projects: Sequence[ProjectInput],
    namespaces: Mapping[str, NamespaceRecord],
) -> tuple[list[Decision], dict[str, Decimal]]:
    """Decide each project in order (oldest first); return the decisions and the total
    claimed of the tenant budget.

    `namespaces` holds what Kubenova knows of every existing namespace (ownership.py).
    """
    total: dict[str, Decimal] = {}
    for project in projects:
        _add(total, project.standing)
    # Where a Project may name a ServiceAccount from: the namespaces the tenant really
    # has (created for its UID), its own two, and the project's own (checked to be free
    # first). Not what other projects merely ask for: a refused project's names could
    # be another tenant's.
    # Looked up only for a project that names a ServiceAccount: it scans every namespace
    # of the cluster, which a pass of every tenant cannot afford each time.
    tenant_namespaces: set[str] | None = None
    decisions: list[Decision] = []
    admitted_count = 0
    namespace_count = 2  # the tenant's owner and apps namespaces
    taken: set[str] = set()
    for project in projects:
        names = project_namespaces(tenant, project.name, project.spec)

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

        invalid = _invalid_budget(project.spec)
        if invalid:
            refuse("InvalidBudget", "the project's budget is invalid: " + "; ".join(invalid))
            continue
        too_long = [ns for ns in names if len(ns) > MAX_NAMESPACE_LENGTH]
        if too_long:
            refuse(
                "NameTooLong",
                f"namespace name {too_long[0]!r} is longer than "
                f"{MAX_NAMESPACE_LENGTH} characters; use a shorter project or "
                "environment name",
            )
            continue
        conflict = _first_conflict(
            names,
            tenant=tenant,
            tenant_uid=tenant_uid,
            project=project.name,
            taken=taken,
            namespaces=namespaces,
        )
        if conflict is not None:
            refuse("NamespaceConflict", conflict)
            continue
        if tenant_namespaces is None and _names_service_accounts(project.spec):
            tenant_namespaces = {owner_namespace(tenant), apps_namespace(tenant)} | {
                ns for ns, record in namespaces.items() if record.tenant_uid == tenant_uid
            }
        foreign = _foreign_service_accounts(project.spec, (tenant_namespaces or set()) | set(names))
        if foreign:
            refuse(
                "SubjectNotAllowed",
                "a Project may only name ServiceAccounts of its own tenant's namespaces; "
                f"not {', '.join(foreign[:5])}",
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
        claim = project_claim(project.name, tenant, project.spec, spec.budget.hard)
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
