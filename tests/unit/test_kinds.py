"""The registry of child kinds (kube/kinds.py) and what is derived from it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubenova_operator.api.common import API_VERSION
from kubenova_operator.api.project import ProjectSpec
from kubenova_operator.api.tenant import TenantSpec
from kubenova_operator.kube import kinds
from kubenova_operator.kube.diff import differences
from kubenova_operator.kube.kinds import REGISTRY, labelled, served, unserved_kinds, wave_of
from kubenova_operator.resources.credentials import request_identities
from kubenova_operator.resources.fairness import tenant_flow_schema
from kubenova_operator.resources.kubevela import delivery_objects
from kubenova_operator.resources.project import project_children
from kubenova_operator.resources.syncs import capsule_sync, vela_sync
from kubenova_operator.resources.tenant import tenant_children

UID = "5f0c9e0e-1c7a-4d7b-9a53-2b8e8d1c4f10"
# Kubenova's own kinds a pass builds besides the registry's (their controllers watch them).
OWN_CHILDREN = {(API_VERSION, k) for k in ("KubeConfigRequest", "CapsuleSync", "VelaSync")}


def everything_a_pass_builds() -> list[dict[str, Any]]:
    tenant = TenantSpec.model_validate(
        {
            "owners": [{"kind": "User", "name": "alice"}],
            "budget": {"hard": {"requests.cpu": "4"}},
            "limits": {"default": {"cpu": "500m"}},
        }
    )
    project = ProjectSpec.model_validate(
        {
            "environments": [{"name": "dev"}, {"name": "prod"}],
            "budget": {"hard": {"requests.cpu": "1"}},
            "developers": [{"kind": "User", "name": "bob"}],
        }
    )
    request = {
        "metadata": {"name": "ci", "namespace": "acme-owner", "uid": UID},
        "spec": {"role": "developer", "project": "web"},
    }
    ids = request_identities("acme", [request])
    return [
        *tenant_children("acme", UID, tenant, {"requests.cpu": Decimal(2)}, identities=ids),
        capsule_sync("acme", UID),
        tenant_flow_schema("acme", tenant, {"web": project}),
        *project_children("web", "acme", UID, tenant, project, identities=ids),
        *delivery_objects("web", "acme", project),
        vela_sync("web", "acme-owner", UID, "acme"),
    ]


def test_every_built_kind_is_declared() -> None:
    """A kind a builder makes but the registry does not know would be written but never
    watched, healed, torn down nor granted to the operator."""
    built = {(o["apiVersion"], o["kind"]) for o in everything_a_pass_builds()}
    declared = {(child.api_version, child.kind) for child in REGISTRY}
    assert built - OWN_CHILDREN == declared


def test_declarations_are_unique() -> None:
    assert len({child.kind for child in REGISTRY}) == len(REGISTRY)
    assert len({(child.group, child.plural) for child in REGISTRY}) == len(REGISTRY)


def test_waves_are_as_before_the_registry() -> None:
    """Namespaces; ServiceAccounts and ClusterRoles; the rest (undeclared kinds too)."""
    assert {child.kind: wave_of(child.kind) for child in REGISTRY} == {
        "Namespace": 0,
        "ServiceAccount": 1,
        "ClusterRole": 1,
        "ResourceQuota": 2,
        "LimitRange": 2,
        "RoleBinding": 2,
        "NetworkPolicy": 2,
        "ClusterRoleBinding": 2,
        "FlowSchema": 2,
        "Policy": 2,
        "Workflow": 2,
    }
    assert wave_of("KubeConfigRequest") == wave_of("VelaSync") == 2
    assert kinds.WAVES == (0, 1, 2)


def test_what_a_retained_teardown_still_deletes() -> None:
    deleted = {child.kind for child in REGISTRY if child.deleted_on_retain}
    assert deleted == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "FlowSchema"}


def test_quantity_paths_compare_by_value() -> None:
    assert kinds.QUANTITY_PATHS == ("spec.hard", "spec.limits")
    quota = {"spec": {"hard": {"requests.cpu": "1"}}}
    assert differences(quota, {"spec": {"hard": {"requests.cpu": "1000m"}}}) == []
    limits = {"spec": {"limits": [{"default": {"memory": "1Gi"}}]}}
    assert differences(limits, {"spec": {"limits": [{"default": {"memory": "1024Mi"}}]}}) == []
    # Elsewhere a quantity-looking string is just a string.
    assert differences({"data": {"x": "1"}}, {"data": {"x": "1000m"}}) == ["data.x"]


def test_kubevela_kinds_only_while_kubevela_is_served() -> None:
    without = {child.kind for child in served(kubevela=False)}
    assert {"Policy", "Workflow"}.isdisjoint(without)
    assert {child.kind for child in served(kubevela=True)} == {c.kind for c in REGISTRY}
    assert unserved_kinds(kubevela=False) == {"Policy", "Workflow"}
    assert unserved_kinds(kubevela=True) == frozenset()


def test_namespaces_are_watched_whole() -> None:
    """Every other kind is watched by label; namespaces are not (a Project must not
    take a namespace somebody else already has)."""
    assert [c.kind for c in REGISTRY if not c.watched_by_label] == ["Namespace"]
    assert "Namespace" not in {c.kind for c in labelled(kubevela=True)}
