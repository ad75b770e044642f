"""Whose a namespace is: Kubenova never takes over one it did not create for the tenant."""

from __future__ import annotations

from kubenova_operator.resources import labels as L
from kubenova_operator.resources.ownership import NamespaceRecord, is_owned, namespace_conflict

UID = "uid-of-sq-yp"


def conflict(record: NamespaceRecord | None, project: str | None = None) -> str | None:
    return namespace_conflict(
        "sq-yp-owner", tenant="sq-yp", tenant_uid=UID, project=project, record=record
    )


def test_absent_or_own_namespaces_are_usable() -> None:
    assert conflict(None) is None
    assert conflict(NamespaceRecord("sq-yp", None, UID, managed=True)) is None


def test_hand_made_other_tenants_and_other_projects_namespaces_are_refused() -> None:
    assert "not created by Kubenova" in (conflict(NamespaceRecord()) or "")
    # Labelled by hand to look like ours: the labels prove nothing, the UID does.
    forged = NamespaceRecord("sq-yp", None, None, managed=True)
    assert "not created by Kubenova" in (conflict(forged) or "")
    # Tenant sq's project yp, environment owner: "sq-yp-owner".
    other = NamespaceRecord("sq", "yp", "uid-of-sq", managed=True)
    assert "tenant 'sq', project 'yp'" in (conflict(other) or "")
    sibling = NamespaceRecord("sq-yp", "api", UID, managed=True)
    assert "project 'api' of this tenant" in (conflict(sibling, project="web") or "")


def test_released_namespaces_go_back_only_to_a_tenant_of_the_same_name() -> None:
    released = NamespaceRecord(None, None, "uid-of-old-sq-yp", released_from="sq-yp")
    assert conflict(released) is None
    elsewhere = NamespaceRecord(None, None, "uid-of-sq", released_from="sq")
    assert conflict(elsewhere) is not None


def test_record_of_a_namespace_body() -> None:
    body = {
        "metadata": {
            "name": "n",
            "labels": {L.MANAGED_BY: L.MANAGER, L.TENANT: "t", L.PROJECT: "p"},
            "annotations": {L.TENANT_UID: UID},
            "deletionTimestamp": "2026-01-01T00:00:00Z",
        }
    }
    record = NamespaceRecord.of(body)
    assert record == NamespaceRecord("t", "p", UID, None, managed=True, terminating=True)
    assert is_owned(record, UID) and not is_owned(record, "other") and not is_owned(None, UID)
