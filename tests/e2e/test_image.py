"""The operator image, built from the repository's Dockerfile with podman and run as a
pod runs it: the in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT and the
kubenova-operator ServiceAccount's token and CA mounted at the kubelet's path), a
read-only root filesystem with only /tmp writable, no capabilities and the image's
non-root user.

The container gets a control plane of its own (started here, for this module): on the
session's, the session's operator process would reconcile too, and this module must
show that the container alone does the work. Skipped only where podman is not
installed (.ci/run installs it) or the stand-in base cannot be made (not root and not
built yet: debootstrap needs root once); the image itself is built before pytest by
`python -m kubenova_e2e build`, so the build here only redoes changed layers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubenova_e2e.build import REPO, controlplane_binary
from kubenova_e2e.controlplane import (
    LocalControlPlane,
    apply_manifest,
    free_port,
    kubectl,
    wait_established,
)
from kubenova_e2e.image import (
    GRACE_SECONDS,
    OperatorContainer,
    build_operator_image,
    cannot_build,
    image_config,
    image_size,
)
from kubenova_e2e.platform import OPERATOR_NAMESPACE, route_shim_to_localhost

from .harness import Cluster, eventually

_CANNOT = cannot_build()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(_CANNOT is not None, reason=_CANNOT or "")]

T = TypeVar("T")
APISERVICE = "v1alpha1.api.kubenova.io"
TENANT = REPO / "examples" / "10-tenant-acme.yaml"


@pytest.fixture(scope="module")
def image() -> str:
    image_id, seconds = build_operator_image()
    size = image_size(image_id) / 1e6
    print(f"\noperator image {image_id[:19]}: built in {seconds:.1f}s, {size:.0f} MB")
    return image_id


def install_in_cluster_objects(kubeconfig: Path) -> None:
    """What `kubectl apply -k manifests/` installs, unchanged (the admission policies
    and the FlowSchema name the operator's ServiceAccount, which is who the container
    is), less the Deployment (the container stands in for its pod) and the kubenova-api
    Service (routed to the container's port instead)."""
    rendered = kubectl("kustomize", str(REPO / "manifests"), kubeconfig=kubeconfig).stdout
    objects = [
        obj
        for obj in yaml.safe_load_all(rendered)
        if obj
        and obj["kind"] != "Deployment"
        and not (obj["kind"] == "Service" and obj["metadata"]["name"] == "kubenova-api")
    ]
    apply_manifest(yaml.safe_dump_all(objects), kubeconfig)
    crds = [
        f"crd/{o['metadata']['name']}" for o in objects if o["kind"] == "CustomResourceDefinition"
    ]
    wait_established(kubeconfig, *crds)


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[tuple[LocalControlPlane, Cluster]]:
    plane = LocalControlPlane()
    plane.start(controllers=False)
    try:
        install_in_cluster_objects(plane.kubeconfig)
        plane.start_controllers()
        yield plane, Cluster(plane.kubeconfig, [str(controlplane_binary()), "kubectl"])
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def container(
    image: str,
    own_cluster: tuple[LocalControlPlane, Cluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorContainer]:
    plane, cluster = own_cluster
    ports = {"metrics": free_port(), "health": free_port(), "shim": free_port()}
    # A TokenRequest token of the operator's ServiceAccount, as the kubelet projects it.
    token = cluster.create_token("kubenova-operator", OPERATOR_NAMESPACE, seconds=3600)
    op = OperatorContainer(
        image,
        server=plane.server,
        token=token,
        ca_file=plane.ca_file,
        namespace=OPERATOR_NAMESPACE,
        workdir=tmp_path_factory.mktemp("container"),
        ports=ports,
        # The image's JSON logs, with kopf's per-object records too (DEBUG): each must
        # format as a line, not a "Logging error" traceback (checked at the end).
        KUBENOVA_LOG_LEVEL="DEBUG",
    )
    route_shim_to_localhost(plane.kubeconfig, ports["shim"])
    op.start()
    try:
        yield op
    finally:
        op.remove()


def _running(op: OperatorContainer) -> None:
    assert op.running(), f"the container exited:\n{op.logs()}"


async def until(op: OperatorContainer, probe: Callable[[], Awaitable[T]], **kwargs: Any) -> T:
    """`eventually`, failing with the container's log."""
    try:
        return await eventually(probe, **kwargs)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\ncontainer log (tail):\n{op.logs()}") from None


async def test_runs_as_the_images_non_root_user_on_a_read_only_root(
    image: str, container: OperatorContainer
) -> None:
    config = image_config(image)
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["kubenova-operator"]

    async def started() -> dict[str, object]:
        _running(container)
        return container.inspect()

    info = await until(container, started, deadline=30, what="the container running")
    host_config = info["HostConfig"]
    assert isinstance(host_config, dict) and host_config["ReadonlyRootfs"] is True
    # The operator process's real, effective, saved and filesystem ids and its
    # capabilities, as the host's /proc shows them.
    status = container.process_status()
    assert set(status["Uid"].split()) == {"65532"}, status["Uid"]
    assert set(status["Gid"].split()) == {"65532"}, status["Gid"]
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0


async def test_probes_answer_on_the_health_port(container: OperatorContainer) -> None:
    async def healthy() -> bool:
        _running(container)
        return container.probe("/healthz") == 200

    await until(container, healthy, deadline=90, what="/healthz answering 200")

    # Ready once it leads (a fresh cluster: no other holder of the Lease).
    async def ready() -> bool:
        _running(container)
        return container.probe("/readyz") == 200

    await until(container, ready, deadline=60, what="/readyz answering 200")


async def test_a_tenant_becomes_ready(
    container: OperatorContainer, own_cluster: tuple[LocalControlPlane, Cluster]
) -> None:
    _, cluster = own_cluster
    cluster.kubectl("apply", "--server-side", "-f", str(TENANT))

    async def ready() -> bool:
        _running(container)
        result = cluster.kubectl(
            "wait", "--for=condition=Ready", "--timeout=5s", "tenants.kubenova.io/acme", check=False
        )
        return result.returncode == 0

    await until(container, ready, deadline=120, interval=1, what="Tenant acme Ready")
    # Built by the container's identity: the Lease it holds names it.
    holder = cluster.kubectl(
        "get", "lease", "kubenova-operator", "-n", OPERATOR_NAMESPACE,
        "-o", "jsonpath={.spec.holderIdentity}",
    ).stdout  # fmt: skip
    assert holder == container.name
    namespaces = cluster.kubectl("get", "namespaces", "-l", "kubenova.io/tenant=acme", "-o", "name")
    assert set(namespaces.stdout.split()) >= {"namespace/acme-owner", "namespace/acme-apps"}


async def test_the_aggregated_api_answers_through_the_api_server(
    container: OperatorContainer, own_cluster: tuple[LocalControlPlane, Cluster]
) -> None:
    _, cluster = own_cluster

    async def usage() -> dict[str, object] | None:
        _running(container)
        result = cluster.kubectl(
            "get", "--raw", "/apis/api.kubenova.io/v1alpha1/tenantusages/acme", check=False
        )
        return json.loads(result.stdout) if result.returncode == 0 else None

    found = await until(container, usage, deadline=120, interval=1, what="tenantusages/acme")
    assert found is not None and found["kind"] == "TenantUsage"
    metadata = found["metadata"]
    assert isinstance(metadata, dict) and metadata["name"] == "acme"
    available = cluster.kubectl(
        "get", "apiservice", APISERVICE, "-o",
        "jsonpath={.status.conditions[?(@.type=='Available')].status}",
    ).stdout  # fmt: skip
    assert available == "True"


async def test_sigterm_stops_it_cleanly_within_the_grace_period(
    container: OperatorContainer,
) -> None:
    _running(container)
    code, seconds = container.terminate()
    print(f"\nSIGTERM to exit: {seconds:.2f}s (exit code {code})")
    logs = container.logs(None)
    assert code == 0, f"exit code {code} after SIGTERM:\n{logs[-8000:]}"
    assert seconds < GRACE_SECONDS, f"took {seconds:.1f}s, past the grace period"
    lines = logs.splitlines()
    # Every line is a JSON log record: no tracebacks, no logging errors.
    not_json = [line for line in lines if not line.startswith("{")]
    assert not not_json, "\n".join(not_json[:40])
    assert any('"Signal SIGTERM is received' in line for line in lines)
