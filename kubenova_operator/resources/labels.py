"""The labels and names every Kubenova-made object carries."""

from __future__ import annotations

from ..api.common import API_VERSION

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "kubenova"
FIELD_MANAGER = "kubenova"
TENANT = "kubenova.io/tenant"
PROJECT = "kubenova.io/project"
ENVIRONMENT = "kubenova.io/environment"
PLAN = "kubenova.io/plan"
# What a namespace is for: owner (Kubenova objects), apps (the tenant's own
# workloads) or project.
NAMESPACE_ROLE = "kubenova.io/namespace-role"
CAPSULE_TENANT = "capsule.clastix.io/tenant"
# Namespace annotations: the UID of the Tenant Kubenova created the namespace for (what
# proves it is that tenant's), and the tenant that released it (deletionPolicy Retain).
TENANT_UID = "kubenova.io/tenant-uid"
RELEASED_FROM = "kubenova.io/released-from"

MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGER}"

# ClusterRoles shipped in manifests/rbac/roles.yaml and bound per namespace.
ROLE_TENANT_OWNER = "kubenova:tenant-owner"
ROLE_APP_USER = "kubenova:app-user"
ROLE_READONLY = "kubenova:readonly"

OWNER_SA = "kubenova-owner"
READONLY_SA = "kubenova-readonly"


# A KubeConfigRequest's own identity: its ServiceAccount carries these.
REQUEST = "kubenova.io/request"
CREDENTIAL_ROLE = "kubenova.io/credential-role"


def request_sa(request: str) -> str:
    """The ServiceAccount a KubeConfigRequest's tokens are issued for: one per request,
    so the audit log names the credential (`system:serviceaccount:<ns>:kcr-<name>`)."""
    return f"kcr-{request}"


def deployer_sa(project: str) -> str:
    """The per-project ServiceAccount app-user kubeconfigs are issued for (it lives in
    the tenant's owner namespace, next to the Project)."""
    return f"{project}-deployer"


def managed_labels(
    tenant: str, project: str | None = None, environment: str | None = None
) -> dict[str, str]:
    labels = {MANAGED_BY: MANAGER, TENANT: tenant}
    if project:
        labels[PROJECT] = project
    if environment:
        labels[ENVIRONMENT] = environment
    return labels


def controller_reference(kind: str, name: str, uid: str) -> dict[str, object]:
    """The ownerReference of a Kubenova kind over what it controls: the garbage
    collector removes the child with it."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
