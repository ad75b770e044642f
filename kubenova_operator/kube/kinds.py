"""Every kind Kubenova builds for tenants, declared once: REGISTRY.

What the rest of the operator knows about a child kind comes from its declaration here:
the builders' apiVersion and kind (resources/), which kinds kopf watches and with which
label selector (__main__, controllers/children.py), the order of writes
(controllers/tenant.py), what a teardown deletes whatever the deletionPolicy
(controllers/teardown.py), which fields compare as quantities (kube/diff.py), and the
rules the operator's ClusterRole needs for them (tests/unit/test_operator_rbac.py holds
manifests/operator/rbac.yaml to it).

Kubenova's own kinds that a pass also builds (KubeConfigRequest, CapsuleSync,
VelaSync) are not here: their controllers watch them whole and say what they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Writes go out in waves, each after the one before has been answered: namespaces
# first (everything else lives in them), then what others name (ServiceAccounts before
# the RoleBindings naming them, ClusterRoles before their bindings), then the rest.
WAVE_NAMESPACES, WAVE_REFERENCED, WAVE_REST = 0, 1, 2
WAVES = (WAVE_NAMESPACES, WAVE_REFERENCED, WAVE_REST)

# The optional peers whose kinds Kubenova builds (integrations/).
Integration = Literal["kubevela"]
KUBEVELA: Integration = "kubevela"

# What the operator does with every child kind, and where: list and watch (the store,
# the relist, the teardown's lists), create (server-side apply creating an object, and
# namespaces' POST), patch (server-side apply, releasing under Retain), delete (pruning,
# the teardown). Never get (the store answers) nor update (apply or merge patch).
CHILD_VERBS = ("list", "watch", "create", "patch", "delete")


@dataclass(frozen=True)
class ChildKind:
    api_version: str  # as in manifests: "v1", "rbac.authorization.k8s.io/v1"
    kind: str
    plural: str  # the resource, as kopf and RBAC name it
    wave: int = WAVE_REST
    # Deleted by a teardown even under deletionPolicy Retain (else released).
    deleted_on_retain: bool = False
    # Paths from the object's root below which leaves are resource quantities, compared
    # by value ("1000m" == "1").
    quantity_paths: tuple[str, ...] = ()
    # Built, watched and torn down only while the cluster serves this peer's kinds.
    integration: Integration | None = None
    # Watched with Kubenova's label selector, so the operator holds only its own
    # objects; False: watched whole (a Project must not take a namespace somebody
    # else already has).
    watched_by_label: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def type_meta(self) -> dict[str, str]:
        """The apiVersion and kind a builder's object starts with."""
        return {"apiVersion": self.api_version, "kind": self.kind}


_RBAC = "rbac.authorization.k8s.io/v1"
_VELA = "core.oam.dev/v1alpha1"

NAMESPACE = ChildKind("v1", "Namespace", "namespaces", wave=WAVE_NAMESPACES, watched_by_label=False)
# Credentials and cluster-wide grants never outlive what they were for: deleting the
# ServiceAccounts invalidates every token issued for them, whatever the policy.
SERVICE_ACCOUNT = ChildKind(
    "v1", "ServiceAccount", "serviceaccounts", wave=WAVE_REFERENCED, deleted_on_retain=True
)
RESOURCE_QUOTA = ChildKind("v1", "ResourceQuota", "resourcequotas", quantity_paths=("spec.hard",))
LIMIT_RANGE = ChildKind("v1", "LimitRange", "limitranges", quantity_paths=("spec.limits",))
ROLE_BINDING = ChildKind(_RBAC, "RoleBinding", "rolebindings")
NETWORK_POLICY = ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
CLUSTER_ROLE = ChildKind(
    _RBAC, "ClusterRole", "clusterroles", wave=WAVE_REFERENCED, deleted_on_retain=True
)
CLUSTER_ROLE_BINDING = ChildKind(
    _RBAC, "ClusterRoleBinding", "clusterrolebindings", deleted_on_retain=True
)
# The tenant's API Priority and Fairness flow (resources/fairness.py): cluster-scoped,
# naming identities that are gone once the tenant is.
FLOW_SCHEMA = ChildKind(
    "flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "flowschemas", deleted_on_retain=True
)
# A project's KubeVela delivery defaults (resources/kubevela.py).
POLICY = ChildKind(_VELA, "Policy", "policies", integration=KUBEVELA)
WORKFLOW = ChildKind(_VELA, "Workflow", "workflows", integration=KUBEVELA)

REGISTRY = (
    NAMESPACE,
    SERVICE_ACCOUNT,
    RESOURCE_QUOTA,
    LIMIT_RANGE,
    ROLE_BINDING,
    NETWORK_POLICY,
    CLUSTER_ROLE,
    CLUSTER_ROLE_BINDING,
    FLOW_SCHEMA,
    POLICY,
    WORKFLOW,
)
_BY_KIND = {child.kind: child for child in REGISTRY}

QUANTITY_PATHS = tuple(path for child in REGISTRY for path in child.quantity_paths)


def served(*, kubevela: bool) -> tuple[ChildKind, ...]:
    """The child kinds the cluster serves now (KubeVela's only while it is installed)."""
    return tuple(child for child in REGISTRY if child.integration is None or kubevela)


def labelled(*, kubevela: bool) -> tuple[ChildKind, ...]:
    """The served child kinds watched and listed by Kubenova's label: all but namespaces."""
    return tuple(child for child in served(kubevela=kubevela) if child.watched_by_label)


def wave_of(kind: str) -> int:
    """The wave an object of `kind` is written in (kinds not declared here: the last)."""
    child = _BY_KIND.get(kind)
    return child.wave if child is not None else WAVE_REST


def unserved_kinds(*, kubevela: bool) -> frozenset[str]:
    """The declared kinds the cluster does not serve now: nothing of them is left."""
    return frozenset(_BY_KIND) - {child.kind for child in served(kubevela=kubevela)}
