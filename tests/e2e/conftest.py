"""One real control plane and one operator for the whole e2e session.

The control plane is built from the official Go modules (e2e/controlplane) and started
on loopback by kubenova_e2e; with KUBENOVA_KUBECONFIG set, an existing cluster (kind,
k3d, a real one) is used instead. CRDs go in before the controller-manager starts (its
garbage collector only rescans API groups every ~30 s).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
from kubenova_e2e.build import controlplane_binary
from kubenova_e2e.controlplane import ExistingCluster, LocalControlPlane, cluster_from_env
from kubenova_e2e.platform import OperatorProcess, install_platform
from kubernetes_asyncio import client

from .harness import Cluster, api_client, until_healthy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def control_plane() -> Iterator[LocalControlPlane | ExistingCluster]:
    plane = cluster_from_env()
    if isinstance(plane, LocalControlPlane):
        plane.start(controllers=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def cluster(control_plane: LocalControlPlane | ExistingCluster) -> Cluster:
    binary = controlplane_binary()
    c = Cluster(kubeconfig=control_plane.kubeconfig, kubectl_binary=[str(binary), "kubectl"])
    install_platform(c.kubeconfig)
    if isinstance(control_plane, LocalControlPlane):
        control_plane.start_controllers()
    return c


@pytest.fixture(scope="session")
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="kubenova-e2e-"))


@pytest.fixture(scope="session")
async def operator(cluster: Cluster, workdir: Path) -> AsyncIterator[OperatorProcess]:
    # Stuck Applications are reported after 20 s here (600 s by default).
    op = OperatorProcess(cluster.kubeconfig, workdir, KUBENOVA_APP_STUCK_SECONDS="20")
    op.start()
    await until_healthy(op)
    yield op
    op.stop()


@pytest.fixture(scope="session")
async def api(cluster: Cluster) -> AsyncIterator[client.ApiClient]:
    api = await api_client(cluster.kubeconfig)
    yield api
    await api.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failing e2e test, attach the operator's last log lines to the report."""
    report = yield
    op = getattr(item, "funcargs", {}).get("operator")
    if report.failed and isinstance(op, OperatorProcess):
        report.sections.append(("operator log (tail)", op.tail(80)))
    return report
