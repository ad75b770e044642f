"""The operator's RBAC (manifests/operator/rbac.yaml) grants what its code uses, and
nothing else.

What the code uses is written down here, each with the code path that needs it; the
rules for the children it builds are derived from their declarations
(kube/kinds.py), so a new child kind fails this test until the ClusterRole grants it.
Why a test rather than generating that part of the YAML (as crdgen does the CRDs): the
operator's ClusterRole is a security boundary that people review line by line, with a
comment saying why each rule is there; a generator would widen it silently whenever
a kind is declared, while this test names the missing (or superfluous) rule and
leaves writing it, and its reason, to a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubenova_operator.api import ALL_KINDS
from kubenova_operator.config import Settings
from kubenova_operator.controllers.kubeconfigrequest import _owner_ref
from kubenova_operator.credentials.tokens import binding_secret
from kubenova_operator.kube.kinds import CHILD_VERBS, REGISTRY
from kubenova_operator.resources.credentials import default_requests
from kubenova_operator.resources.rbac import tenant_cluster_access
from kubenova_operator.resources.uninstall import uninstall_access
from kubenova_operator.shim.registration import APISERVICE_NAME
from kubenova_operator.shim.tls import SECRET_NAME as SERVING_SECRET

from .test_kinds import UID, everything_a_pass_builds

REPO = Path(__file__).resolve().parents[2]
OPERATOR = {"kind": "ServiceAccount", "name": "kubenova-operator", "namespace": "kubenova-system"}
ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

Grant = tuple[str, str, str, str]  # (apiGroup, resource, verb, resourceName or "")


@dataclass(frozen=True)
class Need:
    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()

    def grants(self) -> Iterator[Grant]:
        for resource in self.resources:
            for verb in self.verbs:
                for name in self.names or ("",):
                    yield (self.group, resource, verb, name)


def child_needs() -> list[Need]:
    """Every declared child kind: list, watch, create, patch, delete (kube/kinds.py
    CHILD_VERBS says which code path uses which)."""
    return [
        Need(child.group, (child.plural,), CHILD_VERBS, f"{child.kind}: a child kind")
        for child in REGISTRY
    ]


_KCR_SECRETS = "controllers/kubeconfigrequest.py, credentials/tokens.py"
OWN_NEEDS = [
    # kubenova.io
    Need("kubenova.io", ("tenants",), ("list", "watch"), "controllers/tenant.py tenant_event"),
    Need("kubenova.io", ("tenants",), ("patch",), "controllers/finalizers.py (merge patch)"),
    Need("kubenova.io", ("tenants",), ("get",), "shim/server.py; each tenant's ClusterRole"),
    Need("kubenova.io", ("projects",), ("list", "watch"), "controllers/project.py"),
    Need("kubenova.io", ("projects",), ("patch",), "controllers/finalizers.py (merge patch)"),
    Need(
        "kubenova.io",
        ("kubeconfigrequests", "capsulesyncs", "velasyncs"),
        CHILD_VERBS,
        "built by a pass (apply, prune, teardown), watched; kopf's annotations (patch)",
    ),
    Need("kubenova.io", ("kubeconfigrequests",), ("get",), "shim/server.py _kubeconfig"),
    Need(
        "kubenova.io",
        tuple(f"{kind.info.plural}/status" for kind in ALL_KINDS),
        ("patch",),
        "Kube.patch_status, every controller",
    ),
    # Filled in from the builders by test_finalizers_follow_the_owner_references.
    Need(
        "kubenova.io",
        ("tenants/finalizers", "projects/finalizers", "kubeconfigrequests/finalizers"),
        ("update",),
        "ownerReferences with blockOwnerDeletion (OwnerReferencesPermissionEnforcement)",
    ),
    Need("api.kubenova.io", ("tenantusages",), ("get",), "each tenant's ClusterRole grants it"),
    # Credentials
    Need("", ("secrets",), ("get",), f"{_KCR_SECRETS} (Kube.get); shim/tls.py (read)"),
    Need("", ("secrets",), ("create", "patch"), f"{_KCR_SECRETS} (Kube.apply); shim/tls.py"),
    Need("", ("secrets",), ("delete",), "controllers/kubeconfigrequest.py _revoke"),
    Need("", ("serviceaccounts/token",), ("create",), "credentials/tokens.py request_token"),
    Need(
        "rbac.authorization.k8s.io",
        ("clusterroles",),
        ("bind",),
        "RoleBindings to the product roles (resources/rbac.py, resources/kubevela.py)",
        names=(
            "kubenova:tenant-owner",
            "kubenova:app-user",
            "kubenova:readonly",
            "kubevela:writer:application",
        ),
    ),
    Need("", ("events",), ("create",), "controllers/events.py (kopf.event posts v1 Events)"),
    Need("apiextensions.k8s.io", ("customresourcedefinitions",), ("list", "watch"), "kopf"),
    # KubeVela
    Need("core.oam.dev", ("applications",), ("list", "watch"), "controllers/velasync.py"),
    Need("core.oam.dev", ("applicationrevisions",), ("list", "delete"), "velasync.py prune"),
    # Capsule
    Need(
        "capsule.clastix.io",
        ("tenants",),
        ("get", "list", "watch", "create", "patch"),
        "controllers/capsulesync.py capsule_tenant_event (watch), Kube.apply (heal), "
        "_refresh_unreported (get)",
    ),
    Need(
        "capsule.clastix.io",
        ("capsuleconfigurations",),
        ("get", "list", "watch", "patch"),
        "controllers/capsulesync.py _configuration (get, watch), _ensure_user (merge patch)",
    ),
    # The aggregated API
    Need("apiregistration.k8s.io", ("apiservices",), ("create",), "Shim.register (apply)"),
    Need(
        "apiregistration.k8s.io",
        ("apiservices",),
        ("patch", "delete"),
        "Shim.register (apply); cleanup (delete)",
        names=(APISERVICE_NAME,),
    ),
    Need("", ("pods",), ("list",), "shim/server.py _usage"),
    # The uninstall hold (patch, and the ClusterRole and binding it applies: the child
    # grants above).
    Need(
        "",
        ("serviceaccounts",),
        ("get",),
        "controllers/uninstall.py _set_hold",
        names=(Settings().service_account,),
    ),
    Need(
        "",
        ("namespaces",),
        ("get",),
        "controllers/uninstall.py hold_access",
        names=(Settings().namespace,),
    ),
]
# Roles in the operator's own namespace.
NAMESPACED_NEEDS = [
    Need("coordination.k8s.io", ("leases",), ("get", "create", "update"), "leader election"),
    Need("", ("secrets",), ("update",), "shim/tls.py (replace)", names=(SERVING_SECRET,)),
]


def _documents() -> list[dict[str, Any]]:
    text = (REPO / "manifests/operator/rbac.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _expand(rules: Iterable[dict[str, Any]]) -> set[Grant]:
    out: set[Grant] = set()
    for rule in rules:
        verbs = ALL_VERBS if "*" in rule["verbs"] else rule["verbs"]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in verbs:
                    for name in rule.get("resourceNames") or ("",):
                        out.add((group, resource, verb, name))
    return out


def _bound_to_operator(role_kind: str) -> set[Grant]:
    """What the roles of `role_kind` bound to the operator's ServiceAccount grant."""
    docs = _documents()
    bound = {
        d["roleRef"]["name"]
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and d["roleRef"]["kind"] == role_kind
        and OPERATOR in d["subjects"]
    }
    return _expand(
        rule
        for d in docs
        if d["kind"] == role_kind and d["metadata"]["name"] in bound
        for rule in d["rules"]
    )


def _needed(needs: Iterable[Need]) -> dict[Grant, str]:
    return {grant: need.why for need in needs for grant in need.grants()}


def _text(grant: Grant) -> str:
    group, resource, verb, name = grant
    return f"{verb} {group or 'core'}/{resource}" + (f" {name!r}" if name else "")


@pytest.mark.parametrize(
    ("role_kind", "needs"),
    [("ClusterRole", [*child_needs(), *OWN_NEEDS]), ("Role", NAMESPACED_NEEDS)],
)
def test_what_the_code_uses_is_granted(role_kind: str, needs: list[Need]) -> None:
    needed = _needed(needs)
    missing = sorted(set(needed) - _bound_to_operator(role_kind))
    lacks = [f"{_text(grant)} ({needed[grant]})" for grant in missing]
    assert not missing, f"manifests/operator/rbac.yaml lacks: {lacks}"


@pytest.mark.parametrize(
    ("role_kind", "needs"),
    [("ClusterRole", [*child_needs(), *OWN_NEEDS]), ("Role", NAMESPACED_NEEDS)],
)
def test_nothing_is_granted_that_no_code_path_uses(role_kind: str, needs: list[Need]) -> None:
    extra = sorted(_bound_to_operator(role_kind) - set(_needed(needs)))
    unused = [_text(grant) for grant in extra]
    assert not extra, f"granted but unused (or list its code path here): {unused}"


def test_every_role_in_the_file_is_the_operators() -> None:
    """No role in the file is left unbound (nor bound to somebody else). The roles it
    binds but does not define (system:auth-delegator, kube-system's
    extension-apiserver-authentication-reader) are Kubernetes' own."""
    docs = _documents()
    for kind, binding in (("ClusterRole", "ClusterRoleBinding"), ("Role", "RoleBinding")):
        defined = {d["metadata"]["name"] for d in docs if d["kind"] == kind}
        bound = {
            d["roleRef"]["name"]
            for d in docs
            if d["kind"] == binding and d["roleRef"]["kind"] == kind and OPERATOR in d["subjects"]
        }
        assert defined <= bound, defined - bound


def test_what_a_tenant_role_grants_the_operator_holds() -> None:
    """The API server refuses a ClusterRole granting more than its author holds
    (escalation prevention), so each tenant's ClusterRole must be covered."""
    granted = _bound_to_operator("ClusterRole")
    role = tenant_cluster_access("acme", [])[0]
    for group, resource, verb, _name in _expand(role["rules"]):
        assert (group, resource, verb, "") in granted, (group, resource, verb)


def test_bind_names_the_roles_the_builders_bind() -> None:
    """`bind` is needed for the roles the operator does not build itself (it holds the
    permissions of those it does, the tenants' own ClusterRoles)."""
    built = everything_a_pass_builds()
    own = {o["metadata"]["name"] for o in built if o["kind"] == "ClusterRole"}
    referenced = {
        o["roleRef"]["name"]
        for o in built
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and o["roleRef"]["kind"] == "ClusterRole"
    }
    bind = next(n for n in OWN_NEEDS if n.verbs == ("bind",))
    assert referenced - own == set(bind.names)


def test_finalizers_follow_the_owner_references() -> None:
    """`update` on `<kind>/finalizers` exactly for the kinds Kubenova's objects name in
    an ownerReference with blockOwnerDeletion."""
    request = {**default_requests("acme")[0], "metadata": {"name": "r", "uid": UID}}
    objects = [*everything_a_pass_builds(), binding_secret("r", "ns", _owner_ref(request), "t")]
    owners = {
        ref["kind"]
        for o in objects
        for ref in o["metadata"].get("ownerReferences", [])
        if ref.get("blockOwnerDeletion")
    }
    plural = {kind.info.kind: kind.info.plural for kind in ALL_KINDS}
    finalizers = {
        resource.removesuffix("/finalizers")
        for _, resource, _, _ in _bound_to_operator("ClusterRole")
        if resource.endswith("/finalizers")
    }
    assert finalizers == {plural[kind] for kind in owners}


def test_the_uninstall_access_is_within_the_operators_own() -> None:
    """The API server lets the operator create a ClusterRole only with rules it holds
    itself (escalation check): every rule of its uninstall access must be one, by
    name or for every name."""
    held = _bound_to_operator("ClusterRole")
    settings = Settings()
    role, binding = uninstall_access(settings.namespace, "uid", settings.service_account)
    wanted = _expand(role["rules"])
    missing = [g for g in wanted if g not in held and (*g[:3], "") not in held]
    assert not missing, [_text(g) for g in missing]
    assert (
        binding["subjects"] == [OPERATOR] and binding["roleRef"]["name"] == role["metadata"]["name"]
    )
    # Owned by the namespace: collected with it, and never by Kubenova's own prunes.
    assert role["metadata"]["ownerReferences"][0]["kind"] == "Namespace"
    assert "app.kubernetes.io/managed-by" not in role["metadata"]["labels"]
