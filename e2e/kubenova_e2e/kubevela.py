"""KubeVela's vela-core and kwok's fake nodes, for the tests and the demo.

Both are built from their Go modules (e2e/vela, e2e/kwok) and run as local processes
against the control plane: vela-core with its webhooks off (the admission policy in
manifests/ needs no webhook) and the definitions from its Helm chart; kwok as the
kubelet of one fake node, so pods the real scheduler places there go Running and
Ready, and a webservice Application becomes healthy for real.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

from .build import KWOK_MODULE, VELA_MODULE, kwok_binary, module_dir, vela_core_binary
from .controlplane import (
    ControlPlaneError,
    apply_manifest,
    free_port,
    kubectl,
    stop_process,
    wait_established,
)
from .pki import CA, write_pair

KUBEVELA_MODULE = "github.com/oam-dev/kubevela"
KWOK_GO_MODULE = "sigs.k8s.io/kwok"
VELA_SYSTEM = "vela-system"
FAKE_NODE = "kwok-node-0"
# kwok's "fast" stages: nodes become Ready at once, pods Running and Ready as soon as
# they are scheduled, and are removed when deleted.
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def kubevela_dir() -> Path:
    return module_dir(VELA_MODULE, KUBEVELA_MODULE)


def kubevela_crds() -> Path:
    return kubevela_dir() / "charts" / "vela-core" / "crds"


def kubevela_definitions() -> str:
    """Every definition in the chart's defwithtemplate/, rendered: their only template
    expression is the namespace (`systemDefinitionNamespace`), vela-system here."""
    folder = kubevela_dir() / "charts" / "vela-core" / "templates" / "defwithtemplate"
    placeholder = '{{ include "systemDefinitionNamespace" . }}'
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text()
        rest = text.replace(placeholder, VELA_SYSTEM)
        if "{{" in rest:
            raise ControlPlaneError(f"{path.name}: a Helm expression this renderer does not know")
        docs.append(rest)
    return "\n---\n".join(docs)


def install_kubevela_crds(kubeconfig: Path) -> None:
    kubectl("apply", "--server-side", "-f", str(kubevela_crds()), kubeconfig=kubeconfig)
    wait_established(
        kubeconfig, "crd/applications.core.oam.dev", "crd/componentdefinitions.core.oam.dev"
    )


def install_kubevela(kubeconfig: Path) -> None:
    """KubeVela's CRDs, its namespace and the definitions a webservice needs."""
    install_kubevela_crds(kubeconfig)
    kubectl("create", "namespace", VELA_SYSTEM, kubeconfig=kubeconfig, check=False)
    apply_manifest(kubevela_definitions(), kubeconfig)


class Peer:
    """A peer running as a local process, its output in `<workdir>/<name>.log`."""

    name = ""

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str], env: dict[str, str]) -> None:
        logfile = self.log.open("ab")
        self.proc = subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logfile.close()

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, url: str, timeout: float) -> None:
        """Until `url` answers 200 (a controller-runtime /readyz), failing early if the
        process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise ControlPlaneError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ControlPlaneError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
            )

    def stop(self) -> None:
        stop_process(self.proc)


class VelaCore(Peer):
    """vela-core, one replica, no webhooks, no leader election."""

    name = "vela-core"

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        super().__init__(workdir)
        self.kubeconfig = kubeconfig
        self.health_port = free_port()

    def start(self, timeout: float = 90.0) -> None:
        self._spawn(
            [
                str(vela_core_binary()),
                "--use-webhook=false",
                "--metrics-addr=0",
                f"--health-addr=127.0.0.1:{self.health_port}",
                f"--system-definition-namespace={VELA_SYSTEM}",
                # No cluster-gateway here: single-cluster KubeVela.
                "--feature-gates=DisableBootstrapClusterInfo=true",
                "--application-re-sync-period=30s",
            ],
            {"KUBECONFIG": str(self.kubeconfig)},
        )
        self.wait_ready(f"http://127.0.0.1:{self.health_port}/readyz", timeout)


class Kwok(Peer):
    """kwok managing one fake node (annotated `kwok.x-k8s.io/node: fake`)."""

    name = "kwok"

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        super().__init__(workdir)
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        # kwok's kubelet API (container logs), which the API server reaches at the fake
        # node's address (127.0.0.1) and kubelet port.
        self.kubelet_port = free_port()

    def _logs_config(self) -> Path:
        """A ClusterLogs config: every container's log (`kubectl logs`, through the
        API server to kwok's kubelet API) is one file, in the CRI log format."""
        logs = self.workdir / "kwok-container.log"
        logs.write_text(
            "2026-01-01T00:00:00.000000000Z stdout F started on kwok's fake node\n"
            "2026-01-01T00:00:01.000000000Z stdout F serving\n"
        )
        config = self.workdir / "kwok-logs.yaml"
        config.write_text(
            "apiVersion: kwok.x-k8s.io/v1alpha1\n"
            "kind: ClusterLogs\n"
            "metadata: {name: all-pods}\n"
            f"spec: {{logs: [{{logsFile: {str(logs)!r}}}]}}\n"
        )
        return config

    def start(self, timeout: float = 60.0) -> None:
        stages = module_dir(KWOK_MODULE, KWOK_GO_MODULE)
        configs = [f"--config={stages / path}" for path in KWOK_STAGES]
        configs.append(f"--config={self._logs_config()}")
        ca = CA.create("kwok-kubelet")
        cert, key = ca.issue(FAKE_NODE, hosts=("127.0.0.1", "localhost"), server=True)
        cert_file, key_file = write_pair(self.workdir, "kwok-kubelet", cert, key)
        self._spawn(
            [
                str(kwok_binary()),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-ip=10.0.0.1",
                "--cidr=10.0.0.0/16",
                f"--server-address=127.0.0.1:{self.kubelet_port}",
                f"--node-port={self.kubelet_port}",
                f"--tls-cert-file={cert_file}",
                f"--tls-private-key-file={key_file}",
                *configs,
            ],
            {},
        )
        apply_manifest(_fake_node(), self.kubeconfig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            ready = kubectl(
                "get",
                "node",
                FAKE_NODE,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                kubeconfig=self.kubeconfig,
                check=False,
            )
            if ready.stdout.strip() == "True":
                return
            time.sleep(0.5)
        raise ControlPlaneError(f"fake node {FAKE_NODE} not Ready after {timeout}s:\n{self.tail()}")


def _fake_node() -> str:
    return f"""apiVersion: v1
kind: Node
metadata:
  name: {FAKE_NODE}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: {FAKE_NODE}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  # The API server reaches the node's kubelet API (kwok's) by its first address.
  addresses:
    - {{type: Hostname, address: "127.0.0.1"}}
    - {{type: InternalIP, address: "127.0.0.1"}}
  allocatable: {{cpu: "32", memory: 64Gi, pods: "110"}}
  capacity: {{cpu: "32", memory: 64Gi, pods: "110"}}
"""


def start_kubevela(kubeconfig: Path, workdir: Path) -> list[Peer]:
    """kwok's fake node, KubeVela's CRDs and definitions, and vela-core: everything a
    webservice Application needs to really run. Returns the processes, to stop in
    reverse order; on failure, whatever started is stopped."""
    kwok = Kwok(kubeconfig, workdir)
    core = VelaCore(kubeconfig, workdir)
    try:
        kwok.start()
        install_kubevela(kubeconfig)
        core.start()
    except BaseException:
        core.stop()
        kwok.stop()
        raise
    return [kwok, core]
