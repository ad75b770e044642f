"""`kubectl kubenova` against the real control plane, from tenants' seats: an owner
sees only their tenant, a developer's kubeconfig works in its project only, and a 403
names the permission that is missing.

The plugin runs in-process (Typer's CliRunner) with a kubeconfig holding nothing but a
tenant's token, and once as kubectl runs it: a `kubectl-kubenova` on the PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    create_tenants,
    plugin,
    project_body,
    ready_at_generation,
    token_kubeconfig,
    watch_until,
)

MINE, OTHER = "pla", "plb"
PROJECT = "web"
BUDGET = {"hard": {"requests.cpu": "4", "requests.memory": "4Gi", "pods": "20"}}


@pytest.fixture(scope="module")
async def owner_kubeconfig(
    cluster: Cluster,
    operator: OperatorProcess,
    api: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    await create_tenants(
        api,
        {
            MINE: {"displayName": "Plugin team", "budget": BUDGET},
            OTHER: {"budget": BUDGET},
        },
    )
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        f"{MINE}-owner",
        "projects",
        project_body(MINE, PROJECT, budget={"hard": {"requests.cpu": "1", "pods": "5"}}),
    )
    await watch_until(
        api, "projects", PROJECT, ready_at_generation, namespace=f"{MINE}-owner", deadline=60
    )
    cluster.kubectl(
        "wait", "--for=condition=Available", "--timeout=60s", "apiservice/v1alpha1.api.kubenova.io"
    )
    token = cluster.create_token("kubenova-owner", f"{MINE}-owner")
    return token_kubeconfig(
        cluster, token, f"{MINE}-owner", tmp_path_factory.mktemp("owner") / "config"
    )


def test_owner_sees_only_their_tenant(cluster: Cluster, owner_kubeconfig: Path) -> None:
    # The admin (system owner) sees both, for contrast.
    everything = plugin(cluster.kubeconfig, "tenants", "-o", "json")
    assert everything.exit_code == 0, everything.output
    assert {MINE, OTHER} <= {t["name"] for t in json.loads(everything.output)}

    tree = plugin(owner_kubeconfig, "tenants")
    assert tree.exit_code == 0, tree.output
    assert "tenant pla (Plugin team)" in tree.output
    assert f"project {PROJECT}" in tree.output
    assert f"namespace {MINE}-{PROJECT}" in tree.output
    assert "requests.cpu" in tree.output and "/4" in tree.output  # usage against budget
    assert "Ready=True" in tree.output  # conditions, with reasons
    assert OTHER not in tree.output

    listed = plugin(owner_kubeconfig, "tenants", "-o", "json")
    assert listed.exit_code == 0, listed.output
    model = json.loads(listed.output)
    assert [t["name"] for t in model] == [MINE]
    assert [p["name"] for p in model[0]["projects"]] == [PROJECT]
    assert model[0]["projects"][0]["namespaces"][0]["name"] == f"{MINE}-{PROJECT}"
    assert {"resource": "pods", "used": "0", "budget": "20", "percent": 0.0} in model[0]["usage"]

    usage = plugin(owner_kubeconfig, "usage", "-o", "yaml")
    assert usage.exit_code == 0, usage.output
    assert [u["tenant"] for u in yaml.safe_load(usage.output)] == [MINE]

    other = plugin(owner_kubeconfig, "tenant", OTHER)
    assert other.exit_code == 1
    assert (
        f"missing permission to get tenants.kubenova.io '{OTHER}' at the cluster scope"
        in other.output
    ), other.output


def test_developer_kubeconfig_works_in_its_project_only(
    cluster: Cluster, owner_kubeconfig: Path, tmp_path: Path
) -> None:
    # The owner merges a developer context into a copy of their own kubeconfig.
    mine = tmp_path / "config"
    mine.write_text(owner_kubeconfig.read_text())
    got = plugin(
        mine,
        "kubeconfig",
        MINE,
        "--role",
        "developer",
        "--project",
        PROJECT,
        "--ttl",
        "1h",
        home=tmp_path,
    )
    assert got.exit_code == 0, got.output
    context = f"kubenova-{MINE}-developer-{PROJECT}"
    assert f"context {context} written to {mine}" in got.output
    merged = yaml.safe_load(mine.read_text())
    assert merged["current-context"] == "me"  # not switched without --use
    assert {c["name"] for c in merged["contexts"]} == {"me", context}
    key = tmp_path / "kubenova" / "kubeconfig-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600

    def as_developer(*args: str) -> Any:
        return cluster.kubectl(f"--kubeconfig={mine}", f"--context={context}", *args, check=False)

    # The kubectl helper passes the admin kubeconfig first; the last flag wins.
    assert as_developer("get", "pods", "-n", f"{MINE}-{PROJECT}").returncode == 0
    for elsewhere in (f"{MINE}-apps", f"{MINE}-owner", f"{OTHER}-apps"):
        denied = as_developer("get", "pods", "-n", elsewhere)
        assert denied.returncode != 0 and "forbidden" in denied.stderr, elsewhere

    # Asked again: the same request is reused (no second one), the context refreshed.
    again = plugin(
        mine, "kubeconfig", MINE, "--role", "developer", "-p", PROJECT, "--ttl", "1h", home=tmp_path
    )
    assert again.exit_code == 0, again.output
    listed = cluster.kubectl(
        "get", "kubeconfigrequests", "-n", f"{MINE}-owner", "-o", "json"
    ).stdout
    ours = [
        i for i in json.loads(listed)["items"] if i["metadata"]["name"].startswith("cli-developer-")
    ]
    assert len(ours) == 1 and ours[0]["spec"]["ttlSeconds"] == 3600

    # A developer may not read Tenants: the error names the missing permission.
    denied = plugin(mine, "--context", context, "tenants")
    assert denied.exit_code == 1
    assert "missing permission to list tenants.kubenova.io at the cluster scope" in denied.output
    assert "kubectl auth can-i list tenants.kubenova.io" in denied.output

    revoked = plugin(
        mine, "kubeconfig", MINE, "--role", "developer", "-p", PROJECT, "--revoke", home=tmp_path
    )
    assert revoked.exit_code == 0, revoked.output
    assert context not in {c["name"] for c in yaml.safe_load(mine.read_text())["contexts"]}
    spec = json.loads(
        cluster.kubectl(
            "get",
            "kubeconfigrequest",
            ours[0]["metadata"]["name"],
            "-n",
            f"{MINE}-owner",
            "-o",
            "json",
        ).stdout
    )["spec"]
    assert spec["revoked"] is True


def test_doctor(cluster: Cluster, owner_kubeconfig: Path) -> None:
    admin = plugin(cluster.kubeconfig, "doctor", "-o", "json")
    checks = {c["check"]: c for c in json.loads(admin.output)}
    assert checks["CRD tenants.kubenova.io"]["status"] == "ok"
    assert checks["APIService v1alpha1.api.kubenova.io"]["found"] == "Available"
    leader = checks["operator leader (Lease kubenova-operator)"]
    assert leader["status"] == "ok" and "e2e-operator" in leader["found"]
    # Run outside the cluster: no Deployment, said so (a warning, not a failure).
    assert checks["operator Deployment kubenova-operator"]["status"] == "warn"
    assert admin.exit_code == 0, admin.output

    # A tenant owner may not read CRDs: doctor says which permission it lacks.
    owner = plugin(owner_kubeconfig, "doctor")
    assert "cannot check: get customresourcedefinitions.apiextensions.k8s.io" in owner.output


def test_kubectl_finds_the_plugin(cluster: Cluster, owner_kubeconfig: Path) -> None:
    """`kubectl kubenova` runs the console script installed with the package."""
    bindir = Path(sys.executable).parent
    assert (bindir / "kubectl-kubenova").exists()
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "KUBECONFIG": str(owner_kubeconfig),
    }

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cluster.kubectl_binary, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )

    result = kubectl("kubenova", "usage")
    assert result.returncode == 0, result.stderr
    assert MINE in result.stdout and OTHER not in result.stdout
    # kubectl's own shell completion asks kubectl_complete-kubenova (kubectl >= 1.26).
    completed = kubectl("__complete", "kubenova", "kubeconfig", MINE, "--role", "")
    assert completed.stdout.split() == ["owner", "readonly", "developer", ":4"], completed
