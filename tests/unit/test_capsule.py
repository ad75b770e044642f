"""The Capsule Tenant Kubenova wants for a Tenant, and how drift in it is found
(resources/capsule.py): pure functions."""

from __future__ import annotations

import copy

from kubenova_operator.api.tenant import TenantSpec
from kubenova_operator.resources.capsule import (
    capsule_ready,
    capsule_tenant,
    capsule_user_group,
    drifted_fields,
    tenant_namespaces,
    users_with,
)


def _spec(**fields: object) -> TenantSpec:
    return TenantSpec.model_validate(fields)


def test_owners_are_the_owner_service_account_and_the_human_owners_with_no_capsule_roles() -> None:
    spec = _spec(
        owners=[
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "team-a"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
        ]
    )
    body = capsule_tenant("acme", "uid-1", spec)
    assert body["apiVersion"] == "capsule.clastix.io/v1beta2"
    assert body["kind"] == "Tenant"
    assert body["metadata"]["name"] == "acme"
    assert body["spec"]["owners"] == [
        {
            "kind": "ServiceAccount",
            "name": "system:serviceaccount:acme-owner:kubenova-owner",
            "clusterRoles": [],
        },
        {"kind": "User", "name": "alice", "clusterRoles": []},
        {"kind": "Group", "name": "team-a", "clusterRoles": []},
        {"kind": "ServiceAccount", "name": "system:serviceaccount:tools:ci", "clusterRoles": []},
    ]


def test_deletion_is_prevented_and_no_quota_limit_range_or_network_policy_is_delegated() -> None:
    spec = _spec(budget={"hard": {"pods": "10"}, "maxNamespaces": 5})
    body = capsule_tenant("acme", "uid-1", spec)
    assert body["spec"]["preventDeletion"] is True
    assert body["spec"]["namespaceOptions"] == {"quota": 5}
    for delegated in ("resourceQuotas", "limitRanges", "networkPolicies"):
        assert delegated not in body["spec"]


def test_no_namespace_quota_without_a_budget_limit() -> None:
    assert "namespaceOptions" not in capsule_tenant("acme", "u", _spec())["spec"]


def test_labels_and_the_tenant_uid_are_carried() -> None:
    meta = capsule_tenant("acme", "uid-9", _spec())["metadata"]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "kubenova"
    assert meta["labels"]["kubenova.io/tenant"] == "acme"
    assert meta["annotations"]["kubenova.io/tenant-uid"] == "uid-9"


def test_a_duplicate_owner_is_listed_once() -> None:
    spec = _spec(
        owners=[{"kind": "ServiceAccount", "name": "kubenova-owner", "namespace": "acme-owner"}]
    )
    assert len(capsule_tenant("acme", "u", spec)["spec"]["owners"]) == 1


def _live(desired: dict[str, object]) -> dict[str, object]:
    live = copy.deepcopy(desired)
    # What Capsule and the API server add: not drift.
    live["metadata"]["labels"]["other"] = "x"  # type: ignore[index]
    live["spec"]["cordoned"] = False  # type: ignore[index]
    live["status"] = {"state": "Active", "namespaces": ["acme-apps"]}
    return live


def test_fields_others_set_are_not_drift() -> None:
    desired = capsule_tenant("acme", "u", _spec(budget={"maxNamespaces": 3}))
    live = _live(desired)
    # Owners in another order are the same owners.
    live["spec"]["owners"] = list(reversed(live["spec"]["owners"]))  # type: ignore[index]
    assert drifted_fields(desired, live) == []


def test_hand_edits_of_kubenova_fields_are_drift() -> None:
    desired = capsule_tenant(
        "acme", "u", _spec(budget={"maxNamespaces": 3}, owners=[{"kind": "User", "name": "a"}])
    )
    live = _live(desired)
    live["spec"]["owners"].append({"kind": "User", "name": "mallory"})  # type: ignore[index]
    live["spec"]["preventDeletion"] = False  # type: ignore[index]
    live["spec"]["namespaceOptions"] = {"quota": 100}  # type: ignore[index]
    live["metadata"]["labels"]["kubenova.io/tenant"] = "other"  # type: ignore[index]
    assert drifted_fields(desired, live) == [
        "spec.owners",
        "spec.preventDeletion",
        "spec.namespaceOptions.quota",
        "metadata.labels",
    ]


def test_capsule_owner_roles_given_back_are_drift() -> None:
    desired = capsule_tenant("acme", "u", _spec())
    live = _live(desired)
    live["spec"]["owners"][0]["clusterRoles"] = ["admin"]  # type: ignore[index]
    assert drifted_fields(desired, live) == ["spec.owners"]


def test_the_tenant_group_is_added_to_capsule_users_once_and_nothing_else_moves() -> None:
    admin_users = [{"kind": "Group", "name": "projectcapsule.dev"}, {"kind": "User", "name": "bob"}]
    group = capsule_user_group("acme")
    assert group == {"kind": "Group", "name": "system:serviceaccounts:acme-owner"}
    updated = users_with(admin_users, [group])
    assert updated == [*admin_users, group]
    assert users_with(updated or [], [group]) is None


def test_capsule_status_read() -> None:
    assert tenant_namespaces({"namespaces": ["b", "a"]}) == ["a", "b"]
    assert tenant_namespaces(None) == []
    ready = {"status": {"state": "Active", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert capsule_ready(ready) == (True, "Active")
    assert capsule_ready({"status": {}})[0] is False
    cordoned = {
        "status": {"state": "Cordoned", "conditions": [{"type": "Ready", "status": "True"}]}
    }
    assert capsule_ready(cordoned) == (False, "Capsule reports its Tenant Cordoned")
    failing = {"status": {"conditions": [{"type": "Ready", "status": "False", "message": "boom"}]}}
    assert capsule_ready(failing) == (False, "Capsule reports its Tenant not Ready: boom")
