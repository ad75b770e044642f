"""The API server audit policy (manifests/audit/policy.yaml), read as kube-apiserver
reads it: rules in order, the first match decides. tests/e2e/test_audit.py checks it
against a real API server; this says what it decides for each kind of request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
POLICY = yaml.safe_load((REPO / "manifests" / "audit" / "policy.yaml").read_text())
OPERATOR = "system:serviceaccount:kubenova-system:kubenova-operator"
TENANT_OWNER = "system:serviceaccount:acme-owner:kubenova-owner"
SA_GROUPS = ("system:serviceaccounts", "system:authenticated")


@dataclass(frozen=True)
class Request:
    user: str
    verb: str
    resource: str = ""  # "pods", "pods/exec"; empty for a non-resource URL
    group: str = ""
    path: str = ""
    groups: tuple[str, ...] = ("system:authenticated",)


def _url_matches(patterns: list[str], path: str) -> bool:
    return any(
        path == p or (p.endswith("*") and path.startswith(p[:-1])) or p == "*" for p in patterns
    )


def _resource_matches(groups: list[dict[str, Any]], request: Request) -> bool:
    for entry in groups:
        if entry.get("group", "") != request.group:
            continue
        names = entry.get("resources") or ["*"]
        base = request.resource.split("/")[0]
        if request.resource in names or "*" in names or f"{base}/*" in names:
            return True
    return False


def level(request: Request) -> str:
    """The level of the first rule matching `request` (None when none does)."""
    for rule in POLICY["rules"]:
        if "users" in rule and request.user not in rule["users"]:
            continue
        if "userGroups" in rule and not set(request.groups) & set(rule["userGroups"]):
            continue
        if "verbs" in rule and request.verb not in rule["verbs"]:
            continue
        if request.resource:
            if "nonResourceURLs" in rule:
                continue
            if "resources" in rule and not _resource_matches(rule["resources"], request):
                continue
        else:
            if "resources" in rule:
                continue
            urls = rule.get("nonResourceURLs")
            if urls is not None and not _url_matches(urls, request.path):
                continue
        return str(rule["level"])
    return "None"


def tenant(verb: str, resource: str, group: str = "") -> Request:
    return Request(TENANT_OWNER, verb, resource, group, groups=SA_GROUPS)


def test_the_policy_is_an_audit_policy() -> None:
    assert POLICY["apiVersion"] == "audit.k8s.io/v1" and POLICY["kind"] == "Policy"
    assert POLICY["omitStages"] == ["RequestReceived"]


def test_nothing_is_ever_logged_above_metadata() -> None:
    """No request or response bodies: no Secret data, token or kubeconfig in the log."""
    assert {rule["level"] for rule in POLICY["rules"]} <= {"None", "Metadata"}


@pytest.mark.parametrize(
    "request_",
    [
        tenant("create", "configmaps"),
        tenant("patch", "deployments", "apps"),
        tenant("update", "kubeconfigrequests", "kubenova.io"),
        tenant("delete", "pods"),
        tenant("deletecollection", "configmaps"),
        tenant("get", "secrets"),
        tenant("list", "secrets"),
        tenant("watch", "secrets"),
        tenant("create", "secrets"),
        tenant("get", "pods/exec"),
        tenant("create", "pods/portforward"),
        Request("alice", "create", "configmaps"),
        # The operator's and the control plane's writes stay on the record.
        Request(OPERATOR, "create", "secrets", groups=SA_GROUPS),
        Request(OPERATOR, "create", "serviceaccounts/token", groups=SA_GROUPS),
        Request("system:kube-controller-manager", "create", "pods"),
    ],
    ids=lambda r: f"{r.user.rsplit(':', 1)[-1]}-{r.verb}-{r.resource}",
)
def test_recorded_at_metadata(request_: Request) -> None:
    assert level(request_) == "Metadata"


@pytest.mark.parametrize(
    "request_",
    [
        Request("system:anonymous", "get", path="/healthz"),
        Request("system:anonymous", "get", path="/readyz/etcd"),
        Request(TENANT_OWNER, "get", path="/apis/apps/v1"),
        Request(TENANT_OWNER, "get", path="/openapi/v3"),
        tenant("get", "configmaps"),
        tenant("list", "pods"),
        tenant("create", "events"),
        tenant("create", "events", "events.k8s.io"),
        tenant("create", "selfsubjectreviews", "authentication.k8s.io"),
        tenant("create", "selfsubjectaccessreviews", "authorization.k8s.io"),
        Request(OPERATOR, "watch", "secrets", groups=SA_GROUPS),
        Request(OPERATOR, "list", "namespaces", groups=SA_GROUPS),
        Request(OPERATOR, "update", "leases", "coordination.k8s.io", groups=SA_GROUPS),
        Request(OPERATOR, "create", "subjectaccessreviews", "authorization.k8s.io"),
        Request("system:node:n1", "get", "secrets", groups=("system:nodes",)),
        Request(
            "system:serviceaccount:kube-system:token-cleaner",
            "list",
            "secrets",
            groups=("system:serviceaccounts:kube-system",),
        ),
        Request("system:apiserver", "create", "clusterroles", "rbac.authorization.k8s.io"),
    ],
    ids=lambda r: f"{r.user.rsplit(':', 1)[-1]}-{r.verb}-{r.resource or r.path}",
)
def test_noise_is_dropped(request_: Request) -> None:
    assert level(request_) == "None"
