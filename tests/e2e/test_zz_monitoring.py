"""The dashboard's and the alerts' PromQL against what the operator really exposes.

The operator is driven through what the panels show (a tenant with a budget and a
project, its kubeconfigs, a healed drift, a KubeVela Application), then its /metrics is
scraped: every metric a query selects must be there, with every label the query names
(tests/monitoring.py). The same scrape goes through the real `promtool check metrics`
(Prometheus' naming rules). Named to run last: it reads the scrape after the rest of
the session's activity, and installs KubeVela's CRDs (when test_vela has not) only
after test_vela.py has checked what happens before they exist.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from kubenova_e2e.build import promtool_binary
from kubenova_e2e.kubevela import install_kubevela_crds
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client

from tests.monitoring import all_queries, problems, scrape_labels

from .harness import (
    GROUP,
    VERSION,
    Cluster,
    create_tenants,
    eventually,
    ready_at_generation,
    watch_until,
)

TENANT = "mon"
OWNER_NS = f"{TENANT}-owner"
PROJECT = "web"
APPLICATION = """apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: registry.example/web:1
"""


@pytest.fixture(scope="module")
async def activity(cluster: Cluster, operator: OperatorProcess, api: client.ApiClient) -> None:
    """What the panels and alerts are about, done for real."""
    await create_tenants(api, {TENANT: {"budget": {"hard": {"requests.cpu": "4", "pods": "20"}}}})
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        OWNER_NS,
        "projects",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Project",
            "metadata": {"name": PROJECT, "namespace": OWNER_NS},
            "spec": {"budget": {"hard": {"requests.cpu": "1", "pods": "5"}}},
        },
    )
    await watch_until(api, "projects", PROJECT, ready_at_generation, namespace=OWNER_NS)
    # A drift to heal: the operator restores the LimitRange and counts it.
    await client.CoreV1Api(api).delete_namespaced_limit_range("kubenova-limits", OWNER_NS)
    if cluster.kubectl("get", "crd", "applications.core.oam.dev", check=False).returncode:
        install_kubevela_crds(cluster.kubeconfig)
    cluster.kubectl("apply", "-n", f"{TENANT}-{PROJECT}", "-f", "-", input=APPLICATION)


def _problems(text: str) -> list[str]:
    return problems(all_queries(), scrape_labels(text))


async def test_every_query_matches_the_scrape(activity: None, operator: OperatorProcess) -> None:
    async def fits() -> bool:
        return not _problems(operator.metrics())

    try:
        await eventually(fits, deadline=120, interval=2, what="every query to fit the scrape")
    finally:
        left = _problems(operator.metrics())
    assert left == [], "\n".join(left)
    # And the series the panels are about carry this session's objects.
    labels: dict[str, Any] = scrape_labels(operator.metrics())
    assert {"tenant", "resource"} <= labels["kubenova_tenant_budget"]
    assert {"tenant", "kind", "action"} <= labels["kubenova_drift_corrections_total"]


def test_metric_names_follow_prometheus_rules(activity: None, operator: OperatorProcess) -> None:
    result = subprocess.run(
        [str(promtool_binary()), "check", "metrics"],
        input=operator.metrics(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
