"""The foundation, end to end: CRDs served with their validation, the operator wired to
the real API server, a Tenant built, Ready, listed, and deleted through its finalizer."""

from __future__ import annotations

from typing import Any

import pytest
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .harness import (
    GROUP,
    REPO,
    VERSION,
    Cluster,
    api_message,
    condition,
    metric_value,
    ready_at_generation,
    tenant_body,
    until_deleted,
    watch_until,
)


async def test_tenant_becomes_ready_and_deletes_cleanly(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    await custom.create_cluster_custom_object(
        GROUP, VERSION, "tenants", tenant_body("found", owners=[{"kind": "User", "name": "fiona"}])
    )
    obj = await watch_until(api, "tenants", "found", ready_at_generation)
    assert obj["status"]["phase"] == "Ready"
    assert obj["status"]["namespaces"] == ["found-owner", "found-apps"]
    assert "kubenova.io/teardown" in obj["metadata"]["finalizers"]

    ns = await core.read_namespace("found-owner")
    assert ns.metadata.labels["app.kubernetes.io/managed-by"] == "kubenova"
    assert ns.metadata.labels["kubenova.io/tenant"] == "found"
    assert not ns.metadata.owner_references  # namespaces are never garbage-collected

    # kubectl shows it with its printer columns, under the disambiguated name.
    table = cluster.kubectl("get", "tenants.kubenova.io", "found").stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "READY", "PHASE", "NAMESPACES", "PROJECTS", "AGE"]
    assert row.split()[:5] == ["found", "True", "Ready", "2", "0"]
    assert "found" in cluster.kubectl("get", "kubenova").stdout  # the category
    cluster.kubectl("wait", "--for=condition=Ready", "tenant.kubenova.io/found", "--timeout=10s")

    metrics = operator.metrics()
    assert (
        metric_value(
            metrics, "controller_runtime_reconcile_total", controller="tenant", result="success"
        )
        >= 1
    )
    assert "controller_runtime_reconcile_time_seconds_bucket" in metrics

    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", "found")

    await until_deleted(api, "tenants", "found", deadline=30)
    # deletionPolicy Retain (default): the namespace stays, released.
    ns = await core.read_namespace("found-owner")
    assert "kubenova.io/tenant" not in (ns.metadata.labels or {})


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        (
            "typed",
            {"budget": {"maxProjects": "many"}},
            'spec.budget.maxProjects: Invalid value: "string": spec.budget.maxProjects in body '
            "must be of type integer",
        ),
        (
            "enum",
            {"networkIsolation": "Open"},
            'spec.networkIsolation: Unsupported value: "Open": supported values: "Strict", '
            '"Tenant", "None"',
        ),
        (
            "x" * 58,
            {},
            "a Tenant name may have at most 57 characters, so that its namespace "
            "'<name>-owner' fits in 63",
        ),
        (
            "ttl",
            {"credentials": {"defaultTTLSeconds": 7200, "maxTTLSeconds": 3600}},
            "defaultTTLSeconds must not exceed maxTTLSeconds",
        ),
        (
            "sa",
            {"owners": [{"kind": "ServiceAccount", "name": "ci"}]},
            "a ServiceAccount subject needs a namespace",
        ),
        (
            "labels",
            {"namespaceMetadata": {"labels": {"kubenova.io/tenant": "other"}}},
            "labels under kubenova.io/",
        ),
    ],
    ids=[
        "wrong-type",
        "unknown-enum",
        "name-too-long",
        "ttl-bounds",
        "sa-subject",
        "reserved-label",
    ],
)
async def test_bad_tenant_is_refused_with_a_clear_message(
    api: client.ApiClient, name: str, spec: dict[str, Any], message: str
) -> None:
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as refused:
        await custom.create_cluster_custom_object(
            GROUP, VERSION, "tenants", tenant_body(name, **spec)
        )
    assert refused.value.status == 422
    assert message in api_message(refused.value), refused.value.body


async def test_status_is_not_writable_through_spec_and_conditions_are_well_formed(
    cluster: Cluster, operator: OperatorProcess, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(GROUP, VERSION, "tenants", tenant_body("shape"))
    obj = await watch_until(api, "tenants", "shape", ready_at_generation)
    ready = condition(obj, "Ready")
    assert ready is not None
    assert set(ready) >= {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    # kstatus reads observedGeneration == generation + Ready=True as Current.
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", "shape")


def test_install_manifests_are_accepted_by_the_api_server(cluster: Cluster) -> None:
    """`kubectl apply -k manifests/` as a user would run it, server-side dry run: every
    object passes the real API server's validation and admission."""
    result = cluster.kubectl(
        "apply",
        "-k",
        str(REPO / "manifests"),
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for kind in (
        "deployment.apps/kubenova-operator",
        "apiservice.apiregistration.k8s.io/",
        "clusterrole.rbac.authorization.k8s.io/kubenova:operator",
        "customresourcedefinition.apiextensions.k8s.io/tenants.kubenova.io",
    ):
        assert kind in result.stdout, result.stdout
