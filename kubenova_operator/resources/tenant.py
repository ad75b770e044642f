"""Everything a Tenant is made of, as a pure function of its spec."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..api.tenant import TenantSpec, apps_namespace, owner_namespace
from . import labels as L
from .credentials import RequestIdentities, default_requests
from .namespaces import namespace
from .network_policies import network_policies
from .quantity import canonical_hard, format_quantity, parse_quantity
from .quota import limit_range, owner_namespace_hard, resource_quota
from .rbac import (
    role_binding,
    sa_subject,
    service_account,
    subjects,
    tenant_cluster_access,
)


def owner_subjects(
    tenant: str, spec: TenantSpec, identities: RequestIdentities | None = None
) -> list[dict[str, str]]:
    return [
        sa_subject(L.OWNER_SA, owner_namespace(tenant)),
        *subjects(spec.owners),
        *(identities.owners if identities else ()),
    ]


def readonly_subjects(
    tenant: str, spec: TenantSpec, identities: RequestIdentities | None = None
) -> list[dict[str, str]]:
    return [
        sa_subject(L.READONLY_SA, owner_namespace(tenant)),
        *subjects(spec.viewers),
        *(identities.readers if identities else ()),
    ]


def guardrails(
    ns: str,
    *,
    tenant: str,
    spec: TenantSpec,
    hard: Mapping[str, str | int],
    project: str | None = None,
    environment: str | None = None,
) -> list[dict[str, Any]]:
    """What every tenant namespace gets: quota, container defaults, network policy."""
    out: list[dict[str, Any]] = []
    if hard:
        out.append(
            resource_quota(ns, hard, tenant=tenant, project=project, environment=environment)
        )
    out.append(
        limit_range(ns, spec.limits, tenant=tenant, project=project, environment=environment)
    )
    out.extend(
        network_policies(
            ns, spec.network_isolation, tenant=tenant, project=project, environment=environment
        )
    )
    return out


def apps_quota(spec: TenantSpec, claimed: Mapping[str, Decimal]) -> dict[str, str]:
    """The tenant's apps namespace gets what its Projects leave of the budget (never
    below zero: an over-committed budget is reported, not enforced by deleting)."""
    hard: dict[str, str] = {}
    for key, limit in canonical_hard(spec.budget.hard).items():
        left = parse_quantity(limit) - claimed.get(key, Decimal(0))
        hard[key] = format_quantity(max(left, Decimal(0)))
    return hard


def tenant_children(
    tenant: str,
    tenant_uid: str,
    spec: TenantSpec,
    claimed: Mapping[str, Decimal],
    *,
    identities: RequestIdentities | None = None,
) -> list[dict[str, Any]]:
    """The desired children of a Tenant (its own two namespaces; Projects build theirs).

    `claimed` is what the tenant's admitted Projects hold of its budget; `tenant_uid`
    marks the namespaces as the tenant's.
    """
    owner_ns, apps_ns = owner_namespace(tenant), apps_namespace(tenant)
    owners = owner_subjects(tenant, spec, identities)
    readers = readonly_subjects(tenant, spec, identities)
    out: list[dict[str, Any]] = [
        namespace(owner_ns, tenant=tenant, tenant_uid=tenant_uid, tenant_spec=spec, role="owner"),
        namespace(apps_ns, tenant=tenant, tenant_uid=tenant_uid, tenant_spec=spec, role="apps"),
        service_account(L.OWNER_SA, owner_ns, tenant=tenant),
        service_account(L.READONLY_SA, owner_ns, tenant=tenant),
    ]
    quotas = (
        (owner_ns, owner_namespace_hard(spec.budget.hard, spec.credentials.max_requests)),
        (apps_ns, apps_quota(spec, claimed)),
    )
    for ns, hard in quotas:
        out.extend(guardrails(ns, tenant=tenant, spec=spec, hard=hard))
        out.append(role_binding(L.ROLE_TENANT_OWNER, ns, owners, tenant=tenant))
        out.append(role_binding(L.ROLE_READONLY, ns, readers, tenant=tenant))
    out.extend(tenant_cluster_access(tenant, [*owners, *readers]))
    # Each live KubeConfigRequest's own identity (bound above and in the projects).
    out.extend(identities.service_accounts if identities else ())
    out.extend(default_requests(tenant))
    return out
