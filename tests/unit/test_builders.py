"""The builders: a spec in, the child objects out. No cluster."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubenova_operator.api.project import ProjectSpec
from kubenova_operator.api.tenant import TenantSpec
from kubenova_operator.resources import labels as L
from kubenova_operator.resources.project import project_children, project_claim
from kubenova_operator.resources.tenant import apps_quota, tenant_children

UID = "5f0c9e0e-1c7a-4d7b-9a53-2b8e8d1c4f10"


def _by(objs: list[dict[str, Any]], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in objs
        if o["kind"] == kind
    }


def tenant_spec(**fields: Any) -> TenantSpec:
    return TenantSpec.model_validate(fields)


def test_tenant_gets_two_namespaces_with_guardrails() -> None:
    spec = tenant_spec(
        owners=[{"kind": "User", "name": "alice"}],
        viewers=[{"kind": "Group", "name": "auditors"}],
        plan="gold",
        namespaceMetadata={"labels": {"team": "acme"}},
        budget={"hard": {"requests.cpu": "4"}},
    )
    objs = tenant_children("acme", UID, spec, {})
    namespaces = _by(objs, "Namespace")
    assert set(namespaces) == {("", "acme-owner"), ("", "acme-apps")}
    labels = namespaces[("", "acme-apps")]["metadata"]["labels"]
    assert labels[L.MANAGED_BY] == "kubenova"
    assert labels[L.TENANT] == "acme" and labels[L.CAPSULE_TENANT] == "acme"
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["team"] == "acme" and labels[L.PLAN] == "gold"

    bindings = _by(objs, "RoleBinding")
    owner = bindings[("acme-apps", L.ROLE_TENANT_OWNER)]
    assert owner["roleRef"]["name"] == L.ROLE_TENANT_OWNER
    assert {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"} in (
        owner["subjects"]
    )
    assert {"kind": "ServiceAccount", "name": "kubenova-owner", "namespace": "acme-owner"} in (
        owner["subjects"]
    )
    readonly = bindings[("acme-apps", L.ROLE_READONLY)]
    assert {"kind": "Group", "name": "auditors", "apiGroup": "rbac.authorization.k8s.io"} in (
        readonly["subjects"]
    )

    quotas = _by(objs, "ResourceQuota")
    assert quotas[("acme-apps", "kubenova-quota")]["spec"]["hard"] == {"requests.cpu": "4"}
    assert quotas[("acme-owner", "kubenova-quota")]["spec"]["hard"]["pods"] == "0"
    policies = _by(objs, "NetworkPolicy")
    ingress = policies[("acme-apps", "kubenova-tenant-isolation")]["spec"]["ingress"]
    assert ingress == [{"from": [{"namespaceSelector": {"matchLabels": {L.TENANT: "acme"}}}]}]
    for obj in objs:
        assert obj["metadata"]["labels"][L.MANAGED_BY] == "kubenova"


def test_network_isolation_modes() -> None:
    none = tenant_children("t", UID, tenant_spec(networkIsolation="None"), {})
    assert not _by(none, "NetworkPolicy")
    strict = _by(
        tenant_children("t", UID, tenant_spec(networkIsolation="Strict"), {}), "NetworkPolicy"
    )
    spec = strict[("t-apps", "kubenova-strict-isolation")]["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"from": [{"podSelector": {}}]}]


def test_apps_namespace_gets_what_projects_leave() -> None:
    spec = tenant_spec(budget={"hard": {"requests.cpu": "4", "limits.memory": "8Gi"}})
    claimed = {"requests.cpu": Decimal("2.5"), "limits.memory": Decimal(10 * 2**30)}
    assert apps_quota(spec, claimed) == {"requests.cpu": "1500m", "limits.memory": "0"}


def test_project_namespaces_and_roles() -> None:
    tspec = tenant_spec(owners=[{"kind": "User", "name": "alice"}])
    pspec = ProjectSpec.model_validate(
        {
            "environments": [{"name": "dev"}, {"name": "prod", "hard": {"requests.cpu": "2"}}],
            "budget": {"hard": {"requests.cpu": "1"}},
            "developers": [{"kind": "User", "name": "bob"}],
        }
    )
    objs = project_children("web", "acme", UID, tspec, pspec)
    assert set(_by(objs, "Namespace")) == {("", "acme-web-dev"), ("", "acme-web-prod")}
    quotas = _by(objs, "ResourceQuota")
    assert quotas[("acme-web-prod", "kubenova-quota")]["spec"]["hard"] == {"requests.cpu": "2"}
    app_users = _by(objs, "RoleBinding")[("acme-web-dev", L.ROLE_APP_USER)]["subjects"]
    assert {"kind": "ServiceAccount", "name": "web-deployer", "namespace": "acme-owner"} in (
        app_users
    )
    assert {"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"} in app_users
    assert project_claim("web", "acme", pspec, tspec.budget.hard) == {"requests.cpu": Decimal(3)}
    labels = _by(objs, "Namespace")[("", "acme-web-prod")]["metadata"]["labels"]
    assert labels[L.PROJECT] == "web" and labels[L.ENVIRONMENT] == "prod"


def test_single_namespace_project() -> None:
    objs = project_children("api", "acme", UID, tenant_spec(), ProjectSpec())
    assert set(_by(objs, "Namespace")) == {("", "acme-api")}
    assert not _by(objs, "ResourceQuota")  # no budget, no quota
