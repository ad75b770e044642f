"""Role boundaries, proven against the real API server's RBAC.

Each check runs a real request as the identity in question, by impersonation (--as /
--as-group, for users and groups named in a spec) or with a token issued by the
TokenRequest API for Kubenova's ServiceAccounts, and asserts the allowed ones succeed
and the forbidden ones get 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client

from .harness import GROUP, VERSION, Cluster, create_tenants, ready_at_generation, watch_until

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n"


def as_user(user: str, *groups: str) -> list[str]:
    return [f"--as={user}", *(f"--as-group={g}" for g in groups)]


def allowed(cluster: Cluster, who: list[str], *args: str, stdin: str | None = None) -> None:
    result = cluster.kubectl(*who, *args, check=False, input=stdin)
    assert result.returncode == 0, f"{who} {args} should be allowed: {result.stderr}"


def forbidden(cluster: Cluster, who: list[str], *args: str, stdin: str | None = None) -> None:
    result = cluster.kubectl(*who, *args, check=False, input=stdin)
    assert result.returncode != 0 and "forbidden" in result.stderr.lower(), (
        f"{who} {args} should be forbidden: rc={result.returncode} {result.stderr}"
    )


@pytest.fixture(scope="module")
async def two_tenants(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> AsyncIterator[None]:
    await create_tenants(
        api,
        {
            name: {
                "owners": [{"kind": "User", "name": owner}],
                "viewers": [{"kind": "Group", "name": f"{name}:auditors"}],
                "budget": {"hard": {"pods": "20"}},
            }
            for name, owner in (("rla", "anna"), ("rlb", "bert"))
        },
    )
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "rla-owner",
        "projects",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Project",
            "metadata": {"name": "web", "namespace": "rla-owner"},
            "spec": {
                "developers": [{"kind": "User", "name": "devin"}],
                "budget": {"hard": {"pods": "5"}},
            },
        },
    )
    await watch_until(api, "projects", "web", ready_at_generation, namespace="rla-owner")
    cluster.kubectl(
        "create", "secret", "generic", "crown-jewels", "-n", "rlb-apps", "--from-literal=k=v"
    )
    yield


@pytest.mark.usefixtures("two_tenants")
def test_tenant_owner_works_in_own_tenant_only(cluster: Cluster) -> None:
    anna = as_user("anna")
    allowed(cluster, anna, "create", "-n", "rla-apps", "-f", "-", stdin=CONFIGMAP)
    allowed(
        cluster,
        anna,
        "create",
        "deployment",
        "web",
        "-n",
        "rla-web",
        "--image=registry.example/web:1",
    )
    allowed(cluster, anna, "get", "secrets", "-n", "rla-apps")
    allowed(cluster, anna, "get", "projects.kubenova.io", "-n", "rla-owner")
    # Tenant A's owner cannot read tenant B.
    forbidden(cluster, anna, "get", "secret", "crown-jewels", "-n", "rlb-apps")
    forbidden(cluster, anna, "get", "pods", "-n", "rlb-apps")
    forbidden(cluster, anna, "create", "-n", "rlb-apps", "-f", "-", stdin=CONFIGMAP)
    # Guardrails are readable, never writable.
    allowed(cluster, anna, "get", "resourcequota", "kubenova-quota", "-n", "rla-apps")
    forbidden(cluster, anna, "delete", "resourcequota", "kubenova-quota", "-n", "rla-apps")
    forbidden(
        cluster, anna, "delete", "networkpolicy", "kubenova-tenant-isolation", "-n", "rla-apps"
    )
    forbidden(cluster, anna, "delete", "rolebinding", "kubenova:readonly", "-n", "rla-apps")
    forbidden(
        cluster, anna, "label", "namespace", "rla-apps", "kubenova.io/tenant=rlb", "--overwrite"
    )
    forbidden(cluster, anna, "delete", "namespace", "rla-apps")
    # Tenants themselves are the platform team's.
    forbidden(cluster, anna, "delete", "tenant.kubenova.io", "rlb")


@pytest.mark.usefixtures("two_tenants")
def test_viewer_reads_but_cannot_write_or_see_secrets(cluster: Cluster) -> None:
    viewer = as_user("ivy", "rla:auditors")
    allowed(cluster, viewer, "get", "pods,deployments,configmaps", "-n", "rla-apps")
    allowed(cluster, viewer, "get", "pods", "-n", "rla-web")
    forbidden(cluster, viewer, "get", "secrets", "-n", "rla-apps")
    forbidden(cluster, viewer, "create", "-n", "rla-apps", "-f", "-", stdin=CONFIGMAP)
    forbidden(cluster, viewer, "get", "pods", "-n", "rlb-apps")


@pytest.mark.usefixtures("two_tenants")
def test_app_user_cannot_change_quotas_or_bindings(cluster: Cluster) -> None:
    devin = as_user("devin")
    allowed(cluster, devin, "get", "pods,deployments", "-n", "rla-web")
    forbidden(
        cluster,
        devin,
        "patch",
        "resourcequota",
        "kubenova-quota",
        "-n",
        "rla-web",
        "-p",
        '{"spec":{"hard":{"pods":"1000"}}}',
    )
    forbidden(
        cluster,
        devin,
        "create",
        "rolebinding",
        "mine",
        "-n",
        "rla-web",
        "--clusterrole=admin",
        "--user=devin",
    )
    # KubeVela's application-writer set includes the project's Secrets and ConfigMaps
    # (an Application could mount them anyway); the project only, though: not the
    # tenant's apps namespace, not another tenant.
    allowed(cluster, devin, "get", "secrets", "-n", "rla-web")
    forbidden(cluster, devin, "get", "secrets", "-n", "rla-apps")
    forbidden(cluster, devin, "get", "pods", "-n", "rla-apps")
    forbidden(cluster, devin, "get", "pods", "-n", "rlb-apps")


@pytest.mark.usefixtures("two_tenants")
def test_service_account_tokens_hold_the_same_boundaries(cluster: Cluster) -> None:
    owner = cluster.create_token("kubenova-owner", "rla-owner")
    readonly = cluster.create_token("kubenova-readonly", "rla-owner")
    deployer = cluster.create_token("web-deployer", "rla-owner")

    def run(token: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
        result = cluster.token_kubectl(token, *args, stdin=stdin)
        return result.returncode, result.stderr

    assert (
        run(
            owner,
            "create",
            "-n",
            "rla-apps",
            "-f",
            "-",
            stdin=CONFIGMAP.replace("probe", "probe-sa"),
        )[0]
        == 0
    )
    code, err = run(owner, "get", "secrets", "-n", "rlb-apps")
    assert code != 0 and "forbidden" in err.lower()
    assert run(readonly, "get", "configmaps", "-n", "rla-apps")[0] == 0
    code, err = run(readonly, "create", "-n", "rla-apps", "-f", "-", stdin=CONFIGMAP)
    assert code != 0 and "forbidden" in err.lower()
    assert run(deployer, "get", "pods", "-n", "rla-web")[0] == 0
    code, err = run(deployer, "get", "pods", "-n", "rla-apps")
    assert code != 0 and "forbidden" in err.lower()


@pytest.mark.usefixtures("two_tenants")
def test_system_owners_manage_tenants(cluster: Cluster) -> None:
    admin = as_user("platform-pat", "kubenova:admins")
    allowed(cluster, admin, "get", "tenants.kubenova.io")
    allowed(cluster, admin, "get", "namespaces")
    forbidden(cluster, as_user("random-rita"), "get", "tenants.kubenova.io")
