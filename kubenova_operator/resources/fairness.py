"""API Priority and Fairness: one FlowSchema per tenant, so one tenant flooding the API
server cannot starve another tenant, the operator or the control plane.

The PriorityLevelConfiguration the tenants share (`kubenova-tenants`) and the operator's
own FlowSchema are static (manifests/fairness/); what has to be built per tenant is the
list of identities, because a FlowSchema cannot match "every ServiceAccount of a
namespace whose name ends in -owner" nor a tenant's people (docs/security.md#fairness).

All of a tenant's identities are one flow (no distinguisher): fair queuing is between
tenants, whatever number of ServiceAccounts, pods or kubeconfigs a tenant makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..api.common import Subject, SubjectKind
from ..api.project import ProjectSpec, project_namespaces
from ..api.tenant import TenantSpec, apps_namespace, owner_namespace
from ..kube.kinds import FLOW_SCHEMA
from . import labels as L

# manifests/fairness/priority-level.yaml
PRIORITY_LEVEL = "kubenova-tenants"
# Matched after the built-in schemas that protect the control plane (exempt 1 ... up
# to kube-system-service-accounts 900) and after the operator's own (1000), before the
# built-in catch-alls for service accounts (9000) and everyone else (9900, 10000).
TENANT_PRECEDENCE = 5000


def flow_schema_name(tenant: str) -> str:
    return f"kubenova-tenant-{tenant}"


def _subject(subject: Subject) -> dict[str, Any]:
    """An RBAC-style subject as a FlowSchema subject."""
    if subject.kind == SubjectKind.SERVICE_ACCOUNT:
        return {
            "kind": "ServiceAccount",
            "serviceAccount": {"namespace": subject.namespace or "", "name": subject.name},
        }
    if subject.kind == SubjectKind.GROUP:
        return {"kind": "Group", "group": {"name": subject.name}}
    return {"kind": "User", "user": {"name": subject.name}}


def tenant_namespaces(tenant: str, projects: Mapping[str, ProjectSpec]) -> list[str]:
    """Every namespace the tenant's ServiceAccounts can live in."""
    out = [owner_namespace(tenant), apps_namespace(tenant)]
    for name, spec in sorted(projects.items()):
        out.extend(project_namespaces(tenant, name, spec))
    return out


def tenant_flow_subjects(
    tenant: str, spec: TenantSpec, projects: Mapping[str, ProjectSpec]
) -> list[dict[str, Any]]:
    """Who the tenant is: every ServiceAccount in its namespaces (the kubeconfigs'
    `kubenova-owner`, `kubenova-readonly`, `<project>-deployer` in `<tenant>-owner`,
    and its workloads' own), and the users, groups and ServiceAccounts its Tenant and
    Projects name."""
    namespaces = tenant_namespaces(tenant, projects)
    out: list[dict[str, Any]] = [
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": ns, "name": "*"}}
        for ns in namespaces
    ]
    named: Iterable[Subject] = [
        *spec.owners,
        *spec.viewers,
        *(s for _, p in sorted(projects.items()) for s in (*p.developers, *p.viewers)),
    ]
    for subject in named:
        if subject.kind == SubjectKind.SERVICE_ACCOUNT and subject.namespace in namespaces:
            continue  # already matched by its namespace's wildcard
        converted = _subject(subject)
        if converted not in out:
            out.append(converted)
    return out


def tenant_flow_schema(
    tenant: str, spec: TenantSpec, projects: Mapping[str, ProjectSpec]
) -> dict[str, Any]:
    """The FlowSchema putting every request of the tenant's identities into the shared
    `kubenova-tenants` priority level, as one flow. `projects`: the admitted Projects'
    specs by name."""
    return {
        **FLOW_SCHEMA.type_meta(),
        "metadata": {"name": flow_schema_name(tenant), "labels": L.managed_labels(tenant)},
        "spec": {
            "priorityLevelConfiguration": {"name": PRIORITY_LEVEL},
            "matchingPrecedence": TENANT_PRECEDENCE,
            # No distinguisherMethod: the tenant is one flow. ByUser would give each of
            # its identities a flow of its own, and a tenant owner can make as many
            # ServiceAccounts (and so flows, and so shares) as it likes.
            "rules": [
                {
                    "subjects": tenant_flow_subjects(tenant, spec, projects),
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "clusterScope": True,
                            "namespaces": ["*"],
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
