"""API Priority and Fairness: the per-tenant FlowSchema builder and the static objects
it relies on (manifests/fairness/). No cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from kubenova_operator.api.project import ProjectSpec
from kubenova_operator.api.tenant import TenantSpec
from kubenova_operator.kube.kinds import FLOW_SCHEMA, REGISTRY
from kubenova_operator.resources import labels as L
from kubenova_operator.resources.fairness import (
    PRIORITY_LEVEL,
    TENANT_PRECEDENCE,
    flow_schema_name,
    tenant_flow_schema,
)

REPO = Path(__file__).resolve().parents[2]
FAIRNESS = REPO / "manifests" / "fairness"
# The v1.34 built-in ("suggested" and "mandatory") FlowSchemas, by precedence: those
# protecting the control plane come first, the catch-alls for service accounts and
# everyone else last (`kubectl get flowschemas` on a fresh API server).
PROTECTING_THE_CONTROL_PLANE = {
    "exempt": 1,
    "probes": 2,
    "system-leader-election": 100,
    "system-node-high": 400,
    "system-nodes": 500,
    "kube-controller-manager": 800,
    "kube-scheduler": 800,
    "kube-system-service-accounts": 900,
}
CATCH_ALLS = {"service-accounts": 9000, "global-default": 9900, "catch-all": 10000}


def static(kind: str) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for path in sorted(FAIRNESS.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] == kind
    }


def subjects(fs: dict[str, Any]) -> list[dict[str, Any]]:
    (rule,) = fs["spec"]["rules"]
    return list(rule["subjects"])


def test_a_tenant_is_one_flow_at_the_tenants_level() -> None:
    fs = tenant_flow_schema("acme", TenantSpec(), {})
    kubernetes_validate.validate(fs, "1.34.0", strict=True)
    assert fs["metadata"]["name"] == flow_schema_name("acme") == "kubenova-tenant-acme"
    assert fs["metadata"]["labels"] == L.managed_labels("acme")
    assert fs["spec"]["priorityLevelConfiguration"] == {"name": PRIORITY_LEVEL}
    # No distinguisher: all of the tenant's identities share one flow, so making more
    # ServiceAccounts (or kubeconfigs, or pods) does not buy a tenant more queues.
    assert "distinguisherMethod" not in fs["spec"]
    (rule,) = fs["spec"]["rules"]
    assert rule["resourceRules"] == [
        {
            "verbs": ["*"],
            "apiGroups": ["*"],
            "resources": ["*"],
            "clusterScope": True,
            "namespaces": ["*"],
        }
    ]
    assert rule["nonResourceRules"] == [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


def test_every_identity_of_the_tenant_is_matched() -> None:
    spec = TenantSpec.model_validate(
        {
            "owners": [
                {"kind": "User", "name": "alice"},
                {"kind": "ServiceAccount", "name": "ci", "namespace": "ci-system"},
                {"kind": "ServiceAccount", "name": "kubenova-owner", "namespace": "acme-owner"},
            ],
            "viewers": [{"kind": "Group", "name": "auditors"}, {"kind": "User", "name": "alice"}],
        }
    )
    web = ProjectSpec.model_validate(
        {
            "environments": [{"name": "dev"}, {"name": "prod"}],
            "developers": [
                {"kind": "User", "name": "bob"},
                {"kind": "ServiceAccount", "name": "builder", "namespace": "acme-web-dev"},
            ],
            "viewers": [{"kind": "Group", "name": "qa"}],
        }
    )
    found = subjects(tenant_flow_schema("acme", spec, {"web": web, "api": ProjectSpec()}))
    assert found == [
        # Every ServiceAccount of the tenant's namespaces: the kubeconfigs' own
        # (kubenova-owner, kubenova-readonly, <project>-deployer in <tenant>-owner, and
        # whatever the credentials make there) and the workloads'.
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "acme-owner", "name": "*"}},
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "acme-apps", "name": "*"}},
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "acme-api", "name": "*"}},
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "acme-web-dev", "name": "*"}},
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "acme-web-prod", "name": "*"}},
        # The people and outside ServiceAccounts the Tenant and its Projects name, once.
        {"kind": "User", "user": {"name": "alice"}},
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "ci-system", "name": "ci"}},
        {"kind": "Group", "group": {"name": "auditors"}},
        {"kind": "User", "user": {"name": "bob"}},
        {"kind": "Group", "group": {"name": "qa"}},
    ]


def test_tenants_are_matched_after_the_control_plane_and_the_operator() -> None:
    assert max(PROTECTING_THE_CONTROL_PLANE.values()) < TENANT_PRECEDENCE
    assert min(CATCH_ALLS.values()) > TENANT_PRECEDENCE
    operator = static("FlowSchema")["kubenova-operator"]
    precedence = operator["spec"]["matchingPrecedence"]
    assert max(PROTECTING_THE_CONTROL_PLANE.values()) < precedence < TENANT_PRECEDENCE
    # The in-cluster operator, at the built-in level of the controller-manager's
    # controllers, never at the tenants'.
    assert operator["spec"]["priorityLevelConfiguration"]["name"] == "workload-high"
    (rule,) = operator["spec"]["rules"]
    assert rule["subjects"] == [
        {
            "kind": "ServiceAccount",
            "serviceAccount": {"name": "kubenova-operator", "namespace": "kubenova-system"},
        }
    ]


def test_the_tenants_level_is_bounded() -> None:
    level = static("PriorityLevelConfiguration")[PRIORITY_LEVEL]
    limited = level["spec"]["limited"]
    # The built-in levels' shares sum to 245; tenants get no more than global-default
    # (20) and never borrow beyond it.
    assert limited["nominalConcurrencyShares"] <= 20
    assert limited["borrowingLimitPercent"] == 0
    queuing = limited["limitResponse"]["queuing"]
    assert limited["limitResponse"]["type"] == "Queue"
    assert queuing["handSize"] < queuing["queues"]


def test_the_operator_builds_watches_and_always_deletes_flow_schemas() -> None:
    assert FLOW_SCHEMA in REGISTRY and FLOW_SCHEMA.watched_by_label
    assert (FLOW_SCHEMA.group, FLOW_SCHEMA.plural) == (
        "flowcontrol.apiserver.k8s.io",
        "flowschemas",
    )
    assert FLOW_SCHEMA.deleted_on_retain
    rbac = yaml.safe_load_all((REPO / "manifests/operator/rbac.yaml").read_text())
    (role,) = [d for d in rbac if d["kind"] == "ClusterRole"]
    assert any(
        rule["apiGroups"] == ["flowcontrol.apiserver.k8s.io"]
        and rule["resources"] == ["flowschemas"]
        and {"list", "watch", "patch", "delete"} <= set(rule["verbs"])
        for rule in role["rules"]
    )
