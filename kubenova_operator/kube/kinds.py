"""The kinds Kubenova builds for tenants besides namespaces (and watches by label)."""

# (group, version, plural), as kopf names resources.
CHILD_RESOURCES = (
    ("", "v1", "serviceaccounts"),
    ("", "v1", "resourcequotas"),
    ("", "v1", "limitranges"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("rbac.authorization.k8s.io", "v1", "clusterroles"),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
    ("flowcontrol.apiserver.k8s.io", "v1", "flowschemas"),
)
# (apiVersion, kind), as the API and server-side apply name them.
CHILD_KINDS = (
    ("v1", "ServiceAccount"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
)

# A project's KubeVela delivery defaults (resources/kubevela.py): built, watched and
# torn down like the kinds above, but only while KubeVela serves them.
VELA_CHILD_RESOURCES = (
    ("core.oam.dev", "v1alpha1", "policies"),
    ("core.oam.dev", "v1alpha1", "workflows"),
)
VELA_CHILD_KINDS = (
    ("core.oam.dev/v1alpha1", "Policy"),
    ("core.oam.dev/v1alpha1", "Workflow"),
)


def child_kinds(kubevela: bool) -> tuple[tuple[str, str], ...]:
    """The (apiVersion, kind) of every child kind the cluster serves now."""
    return CHILD_KINDS + VELA_CHILD_KINDS if kubevela else CHILD_KINDS
