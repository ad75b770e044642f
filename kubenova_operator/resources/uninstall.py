"""The access an uninstall's let-go needs, granted apart from the operator's own RBAC
(controllers/uninstall.py explains why).

`kubectl delete -k manifests/` deletes the operator's ClusterRole and
ClusterRoleBinding in the same second as the CRDs. This ClusterRole and its binding
are not in the manifests: the operator applies them at run time, with an
ownerReference to its own Namespace, so they outlive the manifests' RBAC for exactly
as long as that namespace, which waits for the operator's ServiceAccount, which the
operator holds (a finalizer) until it has let go. Then the namespace goes and the
garbage collector takes these with it. The rules are the let-go's and no more, each a
subset of the operator's own role (the API server refuses to let anyone grant what
they do not hold).
"""

from __future__ import annotations

from typing import Any

NAME = "kubenova:operator:uninstall"
COMPONENT = "uninstall-access"


def uninstall_access(
    namespace: str, namespace_uid: str, service_account: str
) -> list[dict[str, Any]]:
    """The ClusterRole and ClusterRoleBinding, owned by the operator's Namespace."""
    meta: dict[str, Any] = {
        "name": NAME,
        # Not Kubenova's managed-by label: these are not a tenant's children, and the
        # operator's watches and prunes must never see them.
        "labels": {
            "app.kubernetes.io/part-of": "kubenova",
            "app.kubernetes.io/component": COMPONENT,
        },
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": namespace_uid}
        ],
    }
    rules = [
        # Let go of Tenants and Projects (controllers/uninstall.py let_go).
        {
            "apiGroups": ["kubenova.io"],
            "resources": ["tenants"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {
            "apiGroups": ["kubenova.io"],
            "resources": ["projects"],
            "verbs": ["list", "watch", "patch"],
        },
        {
            "apiGroups": ["kubenova.io"],
            "resources": ["tenants/finalizers", "projects/finalizers"],
            "verbs": ["update"],
        },
        {
            "apiGroups": ["kubenova.io"],
            "resources": ["kubeconfigrequests"],
            "verbs": ["list", "watch"],
        },
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        # Revoke: delete the token-binding Secrets.
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        # Take the hold off its ServiceAccount: the last thing it does.
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["get", "patch"],
            "resourceNames": [service_account],
        },
    ]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta,
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": NAME,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
            ],
        },
    ]
