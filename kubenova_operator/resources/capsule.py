"""The Capsule Tenant of a Kubenova Tenant, and what Kubenova needs from Capsule's
CapsuleConfiguration: pure functions (controllers/capsulesync.py writes them).

What the Capsule Tenant carries, and why:
- owners: the tenant's `kubenova-owner` ServiceAccount and its human owners
  (spec.owners), each with `clusterRoles: []`. Kubenova's own RBAC (the
  `kubenova:tenant-owner` RoleBindings it builds in every tenant namespace) is the one
  source of what an owner may do; Capsule's default (`admin` and
  `capsule-namespace-deleter` in every namespace) would let owners edit RoleBindings
  and delete namespaces that Kubenova builds from Projects (and would rebuild).
  Being a Capsule owner still matters: capsule-proxy lists the tenant's namespaces to
  its owners, and Capsule admits namespaces of the tenant they create.
- preventDeletion: true. Deleting a Capsule Tenant deletes its namespaces (they carry
  an ownerReference to it); Kubenova never deletes one, and nobody else should by
  accident.
- namespaceOptions.quota: the tenant budget's maxNamespaces, when set.
- Kubenova's labels, the tenant's UID as an annotation, and the label Capsule's tenant
  mutating webhook adds (`kubernetes.io/metadata.name: <tenant>`): without it that
  webhook re-encodes a new Tenant to add it, which drops the empty `clusterRoles` lists
  (Go `omitempty`), and the CRD defaults them to `admin` and
  `capsule-namespace-deleter`, roles Capsule would bind for the owners until the next
  write. (Should a write still be stored otherwise, the CapsuleSync writes it again at
  once, without calling it drift.)
- No resourceQuotas, limitRanges or networkPolicies: Kubenova builds those itself, and
  Capsule v0.14.0's tenants controller starves at start-up when Tenant-controlled
  ResourceQuotas exist (upstream #2102).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..api.common import Subject, SubjectKind
from ..api.tenant import TenantSpec, owner_namespace
from . import labels as L

CAPSULE_API = "capsule.clastix.io/v1beta2"
CAPSULE_TENANT_KIND = "Tenant"
CAPSULE_CONFIGURATION_KIND = "CapsuleConfiguration"
TENANT_UID_ANNOTATION = L.TENANT_UID
# Capsule's default owner roles, replaced deliberately (see the module docstring).
OWNER_CLUSTER_ROLES: list[str] = []
# The label Capsule's tenant mutating webhook sets to the Tenant's name.
CAPSULE_NAME_LABEL = "kubernetes.io/metadata.name"
# Where what Kubenova owns in a Capsule Tenant lives: compared for drift.
OWNED_SPEC_FIELDS = ("owners", "preventDeletion", "namespaceOptions")


def capsule_owner(subject: Subject) -> dict[str, Any]:
    """A Kubenova subject as a Capsule owner: a ServiceAccount is named by its full
    username, as Capsule matches it."""
    if subject.kind == SubjectKind.SERVICE_ACCOUNT:
        name = f"system:serviceaccount:{subject.namespace}:{subject.name}"
    else:
        name = subject.name
    return {"kind": str(subject.kind), "name": name, "clusterRoles": list(OWNER_CLUSTER_ROLES)}


def owner_service_account(tenant: str) -> Subject:
    return Subject(
        kind=SubjectKind.SERVICE_ACCOUNT, name=L.OWNER_SA, namespace=owner_namespace(tenant)
    )


def capsule_tenant(tenant: str, tenant_uid: str, spec: TenantSpec) -> dict[str, Any]:
    """The desired Capsule Tenant of Kubenova Tenant `tenant` (same name)."""
    owners: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for subject in [owner_service_account(tenant), *spec.owners]:
        owner = capsule_owner(subject)
        if (owner["kind"], owner["name"]) not in seen:
            seen.add((owner["kind"], owner["name"]))
            owners.append(owner)
    namespace_options: dict[str, Any] = {}
    if spec.budget.max_namespaces is not None:
        namespace_options["quota"] = spec.budget.max_namespaces
    body: dict[str, Any] = {
        "apiVersion": CAPSULE_API,
        "kind": CAPSULE_TENANT_KIND,
        "metadata": {
            "name": tenant,
            "labels": {**L.managed_labels(tenant), CAPSULE_NAME_LABEL: tenant},
            "annotations": {TENANT_UID_ANNOTATION: tenant_uid},
        },
        "spec": {"owners": owners, "preventDeletion": True},
    }
    if namespace_options:
        body["spec"]["namespaceOptions"] = namespace_options
    return body


def _owner_key(owner: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    return (
        str(owner.get("kind")),
        str(owner.get("name")),
        tuple(sorted(owner.get("clusterRoles") or [])),
    )


def drifted_fields(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """The fields Kubenova owns in the Capsule Tenant (spec.owners, preventDeletion,
    namespaceOptions.quota; its labels and annotation) that `live` does not have as
    `desired` says, by path. Fields others set are not looked at."""
    out = []
    want, have = desired.get("spec") or {}, live.get("spec") or {}
    if sorted(map(_owner_key, want.get("owners") or [])) != sorted(
        map(_owner_key, have.get("owners") or [])
    ):
        out.append("spec.owners")
    if bool(have.get("preventDeletion")) != bool(want.get("preventDeletion")):
        out.append("spec.preventDeletion")
    want_quota = (want.get("namespaceOptions") or {}).get("quota")
    have_quota = (have.get("namespaceOptions") or {}).get("quota")
    if want_quota != have_quota:
        out.append("spec.namespaceOptions.quota")
    for part in ("labels", "annotations"):
        wanted = (desired.get("metadata") or {}).get(part) or {}
        present = (live.get("metadata") or {}).get(part) or {}
        if any(present.get(k) != v for k, v in wanted.items()):
            out.append(f"metadata.{part}")
    return out


def capsule_user_group(tenant: str) -> dict[str, str]:
    """The CapsuleConfiguration `spec.users` entry that makes every credential of
    `tenant` a Capsule user, so capsule-proxy filters what they see: the ServiceAccounts
    its kubeconfigs are issued for (kubenova-owner, kubenova-readonly, one per
    KubeConfigRequest, the project deployers) all live in its owner namespace."""
    return {"kind": "Group", "name": f"system:serviceaccounts:{owner_namespace(tenant)}"}


def users_with(
    users: Iterable[Mapping[str, Any]], wanted: Iterable[Mapping[str, str]]
) -> list[dict[str, Any]] | None:
    """`users` (a CapsuleConfiguration's spec.users) with `wanted` appended where
    missing, everything else kept in its order; None when nothing is missing."""
    current = [dict(u) for u in users]
    have = {(u.get("kind"), u.get("name")) for u in current}
    missing = [dict(w) for w in wanted if (w["kind"], w["name"]) not in have]
    return [*current, *missing] if missing else None


def tenant_namespaces(status: Mapping[str, Any] | None) -> list[str]:
    """The namespaces Capsule counts in its Tenant (status.namespaces), sorted."""
    return sorted((status or {}).get("namespaces") or [])


def capsule_ready(live: Mapping[str, Any]) -> tuple[bool, str]:
    """(ready, why) from Capsule's own status of its Tenant: state Active and its Ready
    condition True."""
    status = live.get("status") or {}
    state = status.get("state")
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return False, f"Capsule has not reported on its Tenant yet (state {state or 'unset'})"
    if ready.get("status") != "True":
        return (
            False,
            f"Capsule reports its Tenant not Ready: {ready.get('message') or ready.get('reason')}",
        )
    if state != "Active":
        return False, f"Capsule reports its Tenant {state or 'without a state'}"
    return True, "Active"
