"""Kubenova with the real Capsule v0.14.0 and capsule-proxy v0.14.0.

This module runs its own control plane and operator (Capsule's webhooks are
failurePolicy Fail for every namespace write in the cluster: the rest of the suite
must not depend on them), and one Capsule and one proxy per host (they bind fixed
ports; kubenova_e2e.capsule serialises them with a file lock). The operator starts
before Capsule is installed, so the first test is also the "installed later, no
restart" case; the tests then run in file order on the same tenants.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubenova_e2e.build import PeerSourceMissing, capsule_proxy_binary, controlplane_binary
from kubenova_e2e.capsule import Capsule, CapsuleProxy, host_lock
from kubenova_e2e.controlplane import LocalControlPlane
from kubenova_e2e.platform import (
    OPERATOR_NAMESPACE,
    OPERATOR_USERNAME,
    OperatorProcess,
    install_platform,
)
from kubernetes_asyncio import client

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    api_client,
    condition,
    eventually,
    kubectl_with,
    merge_patch,
    must_condition,
    project_body,
    ready_at_generation,
    tenant_body,
    until_healthy,
    watch_until,
)

pytestmark = pytest.mark.e2e

CAPSULE_GROUP, CAPSULE_VERSION = "capsule.clastix.io", "v1beta2"
PROXY_CA_SECRET = "capsule-proxy-ca"


@pytest.fixture(scope="module")
def capsule_cluster() -> Iterator[Cluster]:
    if os.environ.get("KUBENOVA_KUBECONFIG"):
        pytest.skip(
            "the Capsule tests install Capsule's webhooks: they run on their own control plane"
        )
    plane = LocalControlPlane(controlplane_binary())
    plane.start(controllers=False)
    try:
        install_platform(plane.kubeconfig)
        plane.start_controllers()
        yield Cluster(kubeconfig=plane.kubeconfig, kubectl_binary=[str(plane.binary), "kubectl"])
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def capsule_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="kubenova-capsule-"))


@pytest.fixture(scope="module")
def proxy_binary() -> Path:
    try:
        return capsule_proxy_binary()
    except PeerSourceMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def proxy(capsule_cluster: Cluster, capsule_workdir: Path) -> CapsuleProxy:
    """The proxy's address and CA (it is started once Capsule runs)."""
    return CapsuleProxy(capsule_cluster.kubeconfig, capsule_workdir)


@pytest.fixture(scope="module")
async def operator(
    capsule_cluster: Cluster, capsule_workdir: Path, proxy: CapsuleProxy
) -> AsyncIterator[OperatorProcess]:
    """The operator, started before Capsule is installed, with capsule-proxy as the
    cluster-default endpoint of kubeconfigs and its CA from a Secret."""
    capsule_cluster.kubectl(
        "create",
        "secret",
        "generic",
        PROXY_CA_SECRET,
        "-n",
        OPERATOR_NAMESPACE,
        f"--from-literal=ca.crt={proxy.ca_pem.decode()}",
    )
    op = OperatorProcess(
        capsule_cluster.kubeconfig,
        capsule_workdir,
        KUBENOVA_CAPSULE_PROXY_URL=proxy.url,
        KUBENOVA_CAPSULE_PROXY_CA_SECRET=f"{OPERATOR_NAMESPACE}/{PROXY_CA_SECRET}",
    )
    op.start()
    await until_healthy(op, deadline=90)
    yield op
    op.stop()


@pytest.fixture(scope="module")
async def api(capsule_cluster: Cluster) -> AsyncIterator[client.ApiClient]:
    api = await api_client(capsule_cluster.kubeconfig)
    yield api
    await api.close()


@pytest.fixture(scope="module")
def capsule(capsule_cluster: Cluster, capsule_workdir: Path) -> Iterator[Capsule]:
    """Capsule, installed and started (by the test that needs it first), one per host."""
    # Kubenova's operator (its own ServiceAccount) is a Capsule administrator, as
    # docs/integrations.md asks of the cluster admin.
    operator_identity = [
        {"kind": "ServiceAccount", "name": OPERATOR_USERNAME},
        {"kind": "User", "name": OPERATOR_USERNAME},
    ]
    peer = Capsule(capsule_cluster.kubeconfig, capsule_workdir, administrators=operator_identity)
    with host_lock("capsule"):
        yield peer
        peer.stop()


@contextlib.contextmanager
def _proxy_running(proxy: CapsuleProxy, binary: Path) -> Iterator[CapsuleProxy]:
    with host_lock("capsule-proxy"):
        proxy.start(binary)
        try:
            yield proxy
        finally:
            proxy.stop()


@pytest.fixture(scope="module")
def running_proxy(
    capsule: Capsule, proxy: CapsuleProxy, proxy_binary: Path
) -> Iterator[CapsuleProxy]:
    capsule.ensure_running()
    with _proxy_running(proxy, proxy_binary) as running:
        yield running


async def _capsule_tenant(api: client.ApiClient, name: str) -> dict[str, Any]:
    return dict(
        await client.CustomObjectsApi(api).get_cluster_custom_object(
            CAPSULE_GROUP, CAPSULE_VERSION, "tenants", name
        )
    )


def _synced(namespaces: list[str]) -> Any:
    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        return ready_at_generation(obj) and sorted(status.get("namespaces") or []) == sorted(
            namespaces
        )

    return check


def _uids(cluster: Cluster, namespaces: list[str]) -> dict[str, str]:
    out = {}
    for ns in namespaces:
        result = cluster.kubectl("get", "namespace", ns, "-o", "jsonpath={.metadata.uid}")
        out[ns] = result.stdout.strip()
    return out


async def _kubeconfig(api: client.ApiClient, namespace: str, name: str, key: str) -> str:
    secret = await client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    return base64.b64decode((secret.data or {})[key]).decode()


def _listed(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.split())


OWN = {"alpha": ["alpha-apps", "alpha-owner"], "beta": ["beta-apps", "beta-owner"]}


async def test_without_capsule_then_installed_syncs_without_a_restart(
    capsule_cluster: Cluster, operator: OperatorProcess, api: client.ApiClient, capsule: Capsule
) -> None:
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant_body("alpha", budget={"maxNamespaces": 5})
    )
    await watch_until(api, "tenants", "alpha", ready_at_generation)
    sync = await watch_until(
        api,
        "capsulesyncs",
        "alpha",
        lambda o: (condition(o, "Available") or {}).get("reason") == "CapsuleNotInstalled",
    )
    assert sync["status"]["available"] is False
    uids = _uids(capsule_cluster, OWN["alpha"])
    pid = operator.proc.pid if operator.proc else None

    started = time.monotonic()
    capsule.install()
    capsule.start()
    # Discovery notices Capsule on the next resync (5 s here); the namespaces made
    # before it was installed are adopted.
    sync = await watch_until(api, "capsulesyncs", "alpha", _synced(OWN["alpha"]), deadline=120)
    took = time.monotonic() - started
    assert operator.proc is not None and operator.proc.pid == pid and operator.alive()
    assert sync["status"]["available"] is True
    assert sync["status"]["apiVersion"] == "capsule.clastix.io/v1beta2"
    assert sync["status"]["capsuleTenant"] == "alpha"
    assert sync["status"]["lastSyncTime"]
    print(f"Capsule installed -> CapsuleSync synced in {took:.1f}s")

    tenant = await _capsule_tenant(api, "alpha")
    assert tenant["status"]["state"] == "Active"
    assert sorted(tenant["status"]["namespaces"]) == OWN["alpha"]
    spec = tenant["spec"]
    assert spec["preventDeletion"] is True
    assert spec["namespaceOptions"]["quota"] == 5
    assert spec["owners"] == [
        {
            "kind": "ServiceAccount",
            "name": "system:serviceaccount:alpha-owner:kubenova-owner",
            "clusterRoles": [],
        }
    ]
    for delegated in ("resourceQuotas", "limitRanges", "networkPolicies"):
        assert not spec.get(delegated), f"{delegated} in the Capsule Tenant: {spec[delegated]}"
    assert _uids(capsule_cluster, OWN["alpha"]) == uids
    config = await custom.get_cluster_custom_object(
        CAPSULE_GROUP, CAPSULE_VERSION, "capsuleconfigurations", "default"
    )
    users = config["spec"]["users"]
    assert {"kind": "Group", "name": "system:serviceaccounts:alpha-owner"} in users
    assert {"kind": "Group", "name": "projectcapsule.dev"} in users  # the admin's stays


async def test_new_tenant_and_project_namespaces_join_capsule(
    operator: OperatorProcess, api: client.ApiClient, capsule: Capsule
) -> None:
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "tenants",
        tenant_body("beta", owners=[{"kind": "User", "name": "bob"}]),
    )
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "alpha-owner", "projects", project_body("alpha", "web")
    )
    await watch_until(api, "projects", "web", ready_at_generation, namespace="alpha-owner")
    beta_sync = await watch_until(api, "capsulesyncs", "beta", _synced(OWN["beta"]), deadline=60)
    await watch_until(
        api, "capsulesyncs", "alpha", _synced([*OWN["alpha"], "alpha-web"]), deadline=60
    )
    beta = await _capsule_tenant(api, "beta")
    # Capsule's tenant webhook gave the new Tenant's owners its default roles; written
    # again at once, and not reported as a hand edit.
    assert {"kind": "User", "name": "bob", "clusterRoles": []} in beta["spec"]["owners"]
    assert all(owner["clusterRoles"] == [] for owner in beta["spec"]["owners"])
    assert beta_sync["status"].get("driftCorrections", 0) == 0


async def test_through_the_proxy_each_credential_sees_its_own_namespaces(
    capsule_cluster: Cluster,
    operator: OperatorProcess,
    api: client.ApiClient,
    running_proxy: CapsuleProxy,
    tmp_path: Path,
) -> None:
    owner = await _kubeconfig(api, "alpha-owner", "kubenova-kubeconfigs", "owner")
    readonly = await _kubeconfig(api, "alpha-owner", "kubenova-kubeconfigs", "readonly")
    beta_owner = await _kubeconfig(api, "beta-owner", "kubenova-kubeconfigs", "owner")
    server = yaml.safe_load(owner)["clusters"][0]["cluster"]["server"]
    assert server == running_proxy.url

    alpha_all = sorted([*OWN["alpha"], "alpha-web"])

    async def lists(kubeconfig: str, expected: list[str]) -> bool:
        got = _listed(
            kubectl_with(capsule_cluster, kubeconfig, tmp_path, "get", "ns", "-o", "name")
        )
        return got == [f"namespace/{ns}" for ns in expected]

    # The proxy's reflector and caches catch up with the RoleBindings within seconds.
    await eventually(lambda: lists(owner, alpha_all), deadline=30, what="owner's namespaces")
    await eventually(lambda: lists(beta_owner, OWN["beta"]), deadline=30, what="beta's")
    await eventually(lambda: lists(readonly, alpha_all), deadline=30, what="readonly's")

    other = kubectl_with(capsule_cluster, owner, tmp_path, "get", "ns", "beta-apps")
    assert other.returncode != 0 and "NotFound" in other.stderr, other.stderr
    write = kubectl_with(
        capsule_cluster, readonly, tmp_path, "create", "configmap", "x", "-n", "alpha-apps"
    )
    assert write.returncode != 0 and "forbidden" in write.stderr.lower(), write.stderr
    made = kubectl_with(
        capsule_cluster, owner, tmp_path, "create", "configmap", "y", "-n", "alpha-apps"
    )
    assert made.returncode == 0, made.stderr

    # A developer of project web sees only web's namespaces.
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "alpha-owner",
        "kubeconfigrequests",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KubeConfigRequest",
            "metadata": {"name": "dev", "namespace": "alpha-owner"},
            "spec": {"role": "developer", "project": "web"},
        },
    )
    request = await watch_until(
        api, "kubeconfigrequests", "dev", ready_at_generation, namespace="alpha-owner"
    )
    developer = await _kubeconfig(api, "alpha-owner", request["status"]["secretName"], "kubeconfig")
    await eventually(lambda: lists(developer, ["alpha-web"]), deadline=30, what="developer's")


async def test_hand_edits_and_deletion_are_healed_in_place(
    capsule_cluster: Cluster, operator: OperatorProcess, api: client.ApiClient, capsule: Capsule
) -> None:
    custom = client.CustomObjectsApi(api)
    alpha_all = sorted([*OWN["alpha"], "alpha-web"])
    uids = _uids(capsule_cluster, alpha_all)
    before = await _capsule_tenant(api, "alpha")
    corrections = (await watch_until(api, "capsulesyncs", "alpha", lambda o: True))["status"].get(
        "driftCorrections", 0
    )
    capsule_cluster.kubectl(
        "patch",
        "tenants.capsule.clastix.io",
        "alpha",
        "--type=merge",
        "-p",
        '{"spec": {"preventDeletion": false, "namespaceOptions": {"quota": 50}}}',
    )

    async def healed() -> bool:
        spec = (await _capsule_tenant(api, "alpha"))["spec"]
        return spec["preventDeletion"] is True and spec["namespaceOptions"]["quota"] == 5

    await eventually(healed, deadline=30, what="the Capsule Tenant healed")
    sync = await watch_until(
        api,
        "capsulesyncs",
        "alpha",
        lambda o: (o.get("status") or {}).get("driftCorrections", 0) > corrections,
    )
    assert sync["status"]["driftCorrections"] == corrections + 1
    after = await _capsule_tenant(api, "alpha")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # healed, not recreated
    events = capsule_cluster.kubectl(
        "get",
        "events",
        "-A",
        "--field-selector",
        "reason=Drifted",
        "-o",
        "jsonpath={.items[*].message}",
    ).stdout
    assert "Capsule Tenant alpha" in events and "spec.preventDeletion" in events

    # The CapsuleSync deleted: rebuilt by the tenant's pass, and synced again.
    old_uid = sync["metadata"]["uid"]
    await custom.delete_cluster_custom_object(GROUP, VERSION, "capsulesyncs", "alpha")
    rebuilt = await watch_until(
        api,
        "capsulesyncs",
        "alpha",
        lambda o: o["metadata"]["uid"] != old_uid and _synced(alpha_all)(o),
        deadline=60,
    )
    assert rebuilt["status"]["capsuleTenant"] == "alpha"
    assert (await _capsule_tenant(api, "alpha"))["metadata"]["uid"] == before["metadata"]["uid"]
    assert _uids(capsule_cluster, alpha_all) == uids


async def test_capsule_down_is_reported_and_a_restart_keeps_tenants_reconciled(
    capsule_cluster: Cluster, operator: OperatorProcess, api: client.ApiClient, capsule: Capsule
) -> None:
    alpha_all = sorted([*OWN["alpha"], "alpha-web"])
    uids = _uids(capsule_cluster, alpha_all)
    capsule.stop()
    # A change that needs a write to the Capsule Tenant while Capsule's webhooks
    # (failurePolicy Fail) cannot answer: reported with the API server's message.
    await merge_patch(api, "tenants", "alpha", {"spec": {"budget": {"maxNamespaces": 6}}})

    def refused(obj: dict[str, Any]) -> bool:
        stalled = condition(obj, "Stalled")
        return bool(stalled and stalled["reason"] == "CapsuleRefused")

    sync = await watch_until(api, "capsulesyncs", "alpha", refused, deadline=60)
    message = must_condition(sync, "Stalled")["message"]
    assert "webhook" in message, message

    # The Warning Event beside the condition, on the CapsuleSync (posted by kopf's
    # poster in the background: looked for until it is there).
    async def refused_event() -> bool:
        got = capsule_cluster.kubectl(
            "get",
            "events",
            "-A",
            "--field-selector",
            "reason=CapsuleRefused,involvedObject.kind=CapsuleSync,involvedObject.name=alpha",
            "-o",
            "jsonpath={.items[*].message}",
        ).stdout
        return "webhook" in got and "Capsule Tenant alpha" in got

    await eventually(refused_event, deadline=30, what="the CapsuleRefused Event")

    started = time.monotonic()
    capsule.start()
    restarted = time.monotonic() - started

    async def quota_six() -> bool:
        spec = (await _capsule_tenant(api, "alpha"))["spec"]
        return bool(spec["namespaceOptions"]["quota"] == 6)

    await eventually(quota_six, deadline=60, what="the quota written once Capsule is back")
    # Both starts logged the tenants controller's workers starting (the #2102 start-up
    # starvation never triggers: Kubenova's Capsule Tenants hold no ResourceQuotas).
    starts = [
        line
        for line in capsule.log.read_text(errors="replace").splitlines()
        if "Starting workers" in line and "tenant" in line.lower()
    ]
    assert len(starts) >= 2, f"tenants workers started {len(starts)} time(s):\n{capsule.tail()}"
    # New namespaces still join after the restart.
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "alpha-owner", "projects", project_body("alpha", "api")
    )
    await watch_until(api, "projects", "api", ready_at_generation, namespace="alpha-owner")
    await watch_until(api, "capsulesyncs", "alpha", _synced([*alpha_all, "alpha-api"]), deadline=60)
    await watch_until(api, "capsulesyncs", "beta", _synced(OWN["beta"]), deadline=60)
    assert _uids(capsule_cluster, alpha_all) == uids
    print(f"Capsule restarted (ready) in {restarted:.1f}s")
