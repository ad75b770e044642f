"""The API server's audit trail of a tenant's credential (manifests/audit/policy.yaml,
which the local control plane runs with): a kubeconfig from a KubeConfigRequest writes a
ConfigMap and reads a Secret, and the log says who did it to which object, at Metadata
level (no Secret data, no token), without the noise.

The audit log is a file of the control plane the tests start; against an existing
cluster (KUBENOVA_KUBECONFIG) it is not readable from here, and the tests skip.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubenova_e2e.controlplane import ExistingCluster, LocalControlPlane
from kubenova_e2e.platform import OPERATOR_NAMESPACE, OPERATOR_USERNAME, OperatorProcess
from kubernetes_asyncio import client

from .harness import GROUP, VERSION, Cluster, create_tenants, eventually, watch_until

TENANT = "audited"
OWNER_NS, APPS_NS = f"{TENANT}-owner", f"{TENANT}-apps"
SECRET_VALUE = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def plane(control_plane: LocalControlPlane | ExistingCluster) -> LocalControlPlane:
    if not isinstance(control_plane, LocalControlPlane):
        pytest.skip(
            "the audit log is a file of the control plane the tests start; an existing "
            "cluster's (KUBENOVA_KUBECONFIG is set) is not readable here"
        )
    return control_plane


def audit_events(plane: LocalControlPlane) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in plane.audit_log_files()
        for line in path.read_text(errors="replace").splitlines()
        if line.strip()
    ]


def matching(
    events: list[dict[str, Any]], username: str, verb: str, resource: str, name: str
) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["user"]["username"] == username
        and e["verb"] == verb
        and (e.get("objectRef") or {}).get("resource") == resource
        and e["objectRef"].get("namespace") == APPS_NS
        and e["objectRef"].get("name") == name
    ]


def kubectl_as(cluster: Cluster, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with nothing but the issued kubeconfig."""
    result = subprocess.run(
        [*cluster.kubectl_binary, f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result


async def issued_kubeconfig(api: client.ApiClient, name: str) -> str:
    """A role-owner KubeConfigRequest, once Ready: its kubeconfig, from its Secret."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KubeConfigRequest",
        "metadata": {"name": name, "namespace": OWNER_NS},
        "spec": {"role": "owner"},
    }
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, OWNER_NS, "kubeconfigrequests", body
    )

    def ready(obj: dict[str, Any]) -> bool:
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) and bool(
            obj["status"].get("secretName")
        )

    obj = await watch_until(api, "kubeconfigrequests", name, ready, namespace=OWNER_NS)
    secret = await client.CoreV1Api(api).read_namespaced_secret(
        obj["status"]["secretName"], OWNER_NS
    )
    return base64.b64decode((secret.data or {})["kubeconfig"]).decode()


async def test_a_tenant_credential_leaves_a_metadata_only_trail(
    plane: LocalControlPlane,
    cluster: Cluster,
    operator: OperatorProcess,
    api: client.ApiClient,
    tmp_path: Path,
) -> None:
    await create_tenants(api, {TENANT: {}})
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "db",
        "-n",
        APPS_NS,
        f"--from-literal=password={SECRET_VALUE}",
    )
    text = await issued_kubeconfig(api, "audit-me")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text)
    kubeconfig.chmod(0o600)
    assert yaml.safe_load(text)["clusters"][0]["cluster"]["server"] == plane.server
    token = yaml.safe_load(text)["users"][0]["user"]["token"]
    claims = token.split(".")[1]
    jti = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["jti"]

    # Whoever the request's token is for (today the tenant's kubenova-owner; it could be
    # a ServiceAccount of the request's own): the API server says.
    whoami = json.loads(kubectl_as(cluster, kubeconfig, "auth", "whoami", "-o", "json").stdout)
    username = whoami["status"]["userInfo"]["username"]
    assert username.startswith(f"system:serviceaccount:{OWNER_NS}:"), username

    kubectl_as(
        cluster, kubeconfig, "create", "configmap", "audited", "-n", APPS_NS, "--from-literal=k=v"
    )
    kubectl_as(cluster, kubeconfig, "get", "secret", "db", "-n", APPS_NS, "-o", "name")
    kubectl_as(cluster, kubeconfig, "get", "configmap", "audited", "-n", APPS_NS, "-o", "name")

    # The operator's own reads are not recorded: its identity (the one the operator
    # process holds too) reads the same Secret.
    operator_token = cluster.create_token("kubenova-operator", OPERATOR_NAMESPACE)
    read = cluster.token_kubectl(operator_token, "get", "secret", "db", "-n", APPS_NS, "-o", "name")
    assert read.returncode == 0, read.stderr
    # ... and the tenant reads it once more: once that is in the log, so is the rest.
    kubectl_as(cluster, kubeconfig, "get", "secret", "db", "-n", APPS_NS, "-o", "name")

    async def trail() -> list[dict[str, Any]]:
        events = audit_events(plane)
        return events if len(matching(events, username, "get", "secrets", "db")) >= 2 else []

    events = await eventually(trail, deadline=30, what="the tenant's events in the audit log")
    (created,) = matching(events, username, "create", "configmaps", "audited")
    first_read, _ = matching(events, username, "get", "secrets", "db")
    for event, code in ((created, 201), (first_read, 200)):
        assert event["level"] == "Metadata", event
        assert event["stage"] == "ResponseComplete", event
        assert event["responseStatus"]["code"] == code, event
        assert "requestObject" not in event and "responseObject" not in event, event
        assert event["objectRef"]["apiVersion"] == "v1"
        # Which of the ServiceAccount's tokens: this request's, not another kubeconfig's.
        assert event["user"]["extra"]["authentication.kubernetes.io/credential-id"] == [
            f"JTI={jti}"
        ], event["user"]
    # Reads of anything but Secrets are not recorded.
    assert not matching(events, username, "get", "configmaps", "audited")
    # The operator's reads are not recorded (the policy's None rule for its
    # ServiceAccount); its writes are, like everyone's: the token it minted for the
    # kubeconfig above is one.
    by_operator = [e for e in events if e["user"]["username"] == OPERATOR_USERNAME]
    assert not [e for e in by_operator if e["verb"] in ("get", "list", "watch")]
    assert any(
        e["verb"] == "create" and e["objectRef"].get("subresource") == "token" for e in by_operator
    ), sorted({(e["verb"], e["objectRef"].get("resource")) for e in by_operator})

    # Never a Secret's data, a token, a kubeconfig; never above Metadata.
    raw = "\n".join(p.read_text(errors="replace") for p in plane.audit_log_files())
    assert SECRET_VALUE not in raw
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in raw
    assert token not in raw
    assert {e["level"] for e in events} == {"Metadata"}
    # No noise: health checks, discovery, Events, Leases, whoami.
    assert not [e for e in events if "objectRef" not in e], "non-resource requests logged"
    noisy = {"events", "leases", "selfsubjectreviews", "tokenreviews", "subjectaccessreviews"}
    assert not [e for e in events if e["objectRef"].get("resource") in noisy]
    assert not [e for e in events if e["user"]["username"] == "system:apiserver"]
    print(f"\naudit log: {len(events)} events, {len(raw) / 1e6:.1f} MB so far")
