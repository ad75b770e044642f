"""Everything a Project is made of, as a pure function of its spec and its tenant's."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..api.project import ProjectSpec, project_namespaces
from ..api.tenant import TenantSpec, owner_namespace
from . import labels as L
from .credentials import RequestIdentities
from .kubevela import namespace_labels, project_binding
from .namespaces import namespace
from .quantity import sum_resources
from .quota import bounded_hard
from .rbac import role_binding, sa_subject, service_account, subjects
from .tenant import guardrails, owner_subjects, readonly_subjects


def environment_quotas(
    project: str, tenant: str, spec: ProjectSpec, budget: Mapping[str, str | int]
) -> list[tuple[str, str | None, dict[str, str | int]]]:
    """(namespace, environment, quota hard) for each of the project's namespaces.

    `budget` is the tenant's: whatever of it the project's budget leaves out, the
    project's namespaces get zero of (see quota.bounded_hard).
    """
    names = project_namespaces(tenant, project, spec)
    if not spec.environments:
        return [(names[0], None, bounded_hard(spec.budget.hard, budget))]
    return [
        (ns, env.name, bounded_hard(env.hard if env.hard is not None else spec.budget.hard, budget))
        for ns, env in zip(names, spec.environments, strict=True)
    ]


def project_claim(
    project: str, tenant: str, spec: ProjectSpec, budget: Mapping[str, str | int]
) -> dict[str, Decimal]:
    """What the project takes from its tenant's budget: the sum of its quotas."""
    return sum_resources(hard for _, _, hard in environment_quotas(project, tenant, spec, budget))


def project_children(
    project: str,
    tenant: str,
    tenant_uid: str,
    tenant_spec: TenantSpec,
    spec: ProjectSpec,
    *,
    identities: RequestIdentities | None = None,
) -> list[dict[str, Any]]:
    owner_ns = owner_namespace(tenant)
    deployer = L.deployer_sa(project)
    owners = owner_subjects(tenant, tenant_spec, identities)
    readers = [*readonly_subjects(tenant, tenant_spec, identities), *subjects(spec.viewers)]
    app_users = [
        sa_subject(deployer, owner_ns),
        *subjects(spec.developers),
        *(identities.developers.get(project, []) if identities else ()),
    ]
    out: list[dict[str, Any]] = [
        service_account(deployer, owner_ns, tenant=tenant, project=project)
    ]
    for ns, env, hard in environment_quotas(project, tenant, spec, tenant_spec.budget.hard):
        out.append(
            namespace(
                ns,
                tenant=tenant,
                tenant_uid=tenant_uid,
                tenant_spec=tenant_spec,
                role="project",
                project=project,
                environment=env,
                # Which KubeVela env the namespace is; these override the user's
                # labels, and Kubenova's identity labels override both.
                extra_labels={**spec.namespace_metadata.labels, **namespace_labels(project, env)},
                extra_annotations=spec.namespace_metadata.annotations,
            )
        )
        out.extend(
            guardrails(
                ns, tenant=tenant, spec=tenant_spec, hard=hard, project=project, environment=env
            )
        )
        for role, members in (
            (L.ROLE_TENANT_OWNER, owners),
            (L.ROLE_READONLY, readers),
            (L.ROLE_APP_USER, app_users),
        ):
            out.append(
                role_binding(role, ns, members, tenant=tenant, project=project, environment=env)
            )
        # The KubeVela project's footprint: its group and the app users may write
        # Applications (and their Policies, Workflows, Secrets, ConfigMaps).
        out.append(project_binding(project, ns, app_users, tenant=tenant, environment=env))
    return out
