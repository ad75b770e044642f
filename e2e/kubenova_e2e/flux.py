"""Flux's source-controller and kustomize-controller, for the GitOps tests.

Both are built from their Go modules (e2e/flux) and run as local processes against the
control plane, with their CRDs from the same modules: no webhooks (Flux has none), no
leader election, every port a free loopback port. source-controller serves the
artifacts it fetches from Git on its own storage server (`--storage-addr`), and
advertises that loopback address (`--storage-adv-addr`) in each artifact's URL, where
kustomize-controller downloads them. kustomize-controller runs with Flux's multi-tenancy
lockdown flag `--no-cross-namespace-refs`: a Kustomization reads sources of its own
namespace only.
"""

from __future__ import annotations

from pathlib import Path

from .build import FLUX_MODULE, flux_binaries, module_dir
from .controlplane import free_port, kubectl, wait_established
from .kubevela import Peer

FLUX_NAMESPACE = "flux-system"
SOURCE_MODULE = "github.com/fluxcd/source-controller"
KUSTOMIZE_MODULE = "github.com/fluxcd/kustomize-controller"


def flux_crds() -> list[Path]:
    """The CRD folders of both controllers, at the versions e2e/flux/go.mod pins."""
    return [
        module_dir(FLUX_MODULE, module) / "config" / "crd" / "bases"
        for module in (SOURCE_MODULE, KUSTOMIZE_MODULE)
    ]


def install_flux(kubeconfig: Path) -> None:
    """Flux's CRDs and its namespace."""
    for folder in flux_crds():
        kubectl("apply", "--server-side", "-f", str(folder), kubeconfig=kubeconfig)
    wait_established(
        kubeconfig,
        "crd/gitrepositories.source.toolkit.fluxcd.io",
        "crd/kustomizations.kustomize.toolkit.fluxcd.io",
    )
    kubectl("create", "namespace", FLUX_NAMESPACE, kubeconfig=kubeconfig, check=False)


class _Controller(Peer):
    binary_index = 0

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        super().__init__(workdir)
        self.kubeconfig = kubeconfig
        self.health_port = free_port()
        self.metrics_port = free_port()

    def extra_args(self) -> list[str]:
        return []

    def start(self, timeout: float = 60.0) -> None:
        binary = flux_binaries()[self.binary_index]
        self._spawn(
            [
                str(binary),
                f"--health-addr=127.0.0.1:{self.health_port}",
                f"--metrics-addr=127.0.0.1:{self.metrics_port}",
                "--watch-all-namespaces=true",
                "--enable-leader-election=false",
                "--log-encoding=console",
                "--requeue-dependency=5s",
                *self.extra_args(),
            ],
            {"RUNTIME_NAMESPACE": FLUX_NAMESPACE, "KUBECONFIG": str(self.kubeconfig)},
        )
        self.wait_ready(f"http://127.0.0.1:{self.health_port}/readyz", timeout)


class SourceController(_Controller):
    """Fetches GitRepositories and serves them as tarballs on its storage server."""

    name = "source-controller"
    binary_index = 0

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        super().__init__(kubeconfig, workdir)
        self.storage_port = free_port()
        self.storage = workdir / "flux-storage"

    def extra_args(self) -> list[str]:
        self.storage.mkdir(parents=True, exist_ok=True)
        return [
            f"--storage-path={self.storage}",
            f"--storage-addr=127.0.0.1:{self.storage_port}",
            f"--storage-adv-addr=127.0.0.1:{self.storage_port}",
        ]


class KustomizeController(_Controller):
    """Builds and applies Kustomizations (server-side apply, field manager
    `kustomize-controller`), waits on their health with kstatus, prunes."""

    name = "kustomize-controller"
    binary_index = 1

    def extra_args(self) -> list[str]:
        return ["--no-cross-namespace-refs=true"]


def start_flux(kubeconfig: Path, workdir: Path) -> tuple[SourceController, KustomizeController]:
    """Flux's CRDs, namespace and both controllers. Returns the processes, to stop in
    reverse order; on failure, whatever started is stopped."""
    source = SourceController(kubeconfig, workdir)
    kustomize = KustomizeController(kubeconfig, workdir)
    try:
        install_flux(kubeconfig)
        source.start()
        kustomize.start()
    except BaseException:
        kustomize.stop()
        source.stop()
        raise
    return source, kustomize
