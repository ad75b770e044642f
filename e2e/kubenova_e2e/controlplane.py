"""Start etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback.

    plane = LocalControlPlane()
    plane.start(controllers=False)   # API server up; install CRDs now
    plane.start_controllers()        # then the controller-manager and scheduler
    ...                              # plane.kubeconfig is an admin kubeconfig
    plane.stop()

Every process runs in its own process group, dies with its parent (PDEATHSIG), and logs
to a file in the work dir; one that exits early is reported with its last log lines.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import yaml

from .build import cache_dir, controlplane_binary
from .pki import CA, service_account_keys, write_pair

SERVICE_CIDR = "10.0.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the Python process that started it dies."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ControlPlaneError(RuntimeError):
    pass


class LocalControlPlane:
    def __init__(
        self, binary: Path | None = None, workdir: Path | None = None, keep: bool = False
    ) -> None:
        self.binary = binary or controlplane_binary()
        if workdir is None:
            (cache_dir() / "run").mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="cp-", dir=cache_dir() / "run"))
        self.workdir = workdir
        self.keep = keep
        self.pki = workdir / "pki"
        self.kubeconfig = workdir / "kubeconfig"
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stopped = False
        atexit.register(self.stop)

    # --- certificates and kubeconfigs -------------------------------------------

    def _write_pki(self) -> None:
        self.pki.mkdir(parents=True, exist_ok=True)
        ca = CA.create("kubenova-local-ca")
        self.ca_file, self.ca_key_file = write_pair(self.pki, "ca", ca.cert_pem, ca.key_pem)
        self.serving_cert, self.serving_key = write_pair(
            self.pki,
            "apiserver",
            *ca.issue(
                "kube-apiserver",
                server=True,
                client=False,
                hosts=(
                    "127.0.0.1",
                    "localhost",
                    "10.0.0.1",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ),
            ),
        )
        self.admin_cert, self.admin_key = write_pair(
            self.pki, "admin", *ca.issue("kubenova-admin", organizations=("system:masters",))
        )
        for component in ("kube-controller-manager", "kube-scheduler"):
            cert, key = write_pair(self.pki, component, *ca.issue(f"system:{component}"))
            self._write_kubeconfig(self.workdir / f"{component}.kubeconfig", cert, key)
        front = CA.create("kubenova-front-proxy-ca")
        self.front_proxy_ca, _ = write_pair(
            self.pki, "front-proxy-ca", front.cert_pem, front.key_pem
        )
        self.front_proxy_cert, self.front_proxy_key = write_pair(
            self.pki, "front-proxy-client", *front.issue("front-proxy-client")
        )
        self.sa_key, self.sa_pub = service_account_keys(self.pki)
        self._write_kubeconfig(self.kubeconfig, self.admin_cert, self.admin_key)

    def _write_kubeconfig(self, path: Path, cert: Path, key: Path) -> None:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "kubenova-local",
                    "clusters": [
                        {
                            "name": "kubenova-local",
                            "cluster": {
                                "server": self.server,
                                "certificate-authority-data": b64(self.ca_file),
                            },
                        }
                    ],
                    "users": [
                        {
                            "name": "admin",
                            "user": {
                                "client-certificate-data": b64(cert),
                                "client-key-data": b64(key),
                            },
                        }
                    ],
                    "contexts": [
                        {
                            "name": "kubenova-local",
                            "context": {"cluster": "kubenova-local", "user": "admin"},
                        }
                    ],
                }
            )
        )
        path.chmod(0o600)

    # --- processes ---------------------------------------------------------------

    def _spawn(self, component: str, *args: str) -> None:
        log = (self.workdir / f"{component}.log").open("ab")
        proc = subprocess.Popen(
            [str(self.binary), component, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - called before any thread starts
        )
        log.close()
        self._procs.append((component, proc))

    def _check_alive(self) -> None:
        for component, proc in self._procs:
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{component} exited with {proc.returncode}:\n{self.log_tail(component)}"
                )

    def log_tail(self, component: str, lines: int = 40) -> str:
        path = self.workdir / f"{component}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, url: str, timeout: float, tls: bool = True) -> None:
        context = None
        if tls:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            context.load_cert_chain(str(self.admin_cert), str(self.admin_key))
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, context=context, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(f"{url} not ready after {timeout}s ({last})")

    def start(self, controllers: bool = True) -> None:
        started = time.monotonic()
        self._write_pki()
        etcd_port, peer_port = free_port(), free_port()
        self._spawn(
            "etcd",
            f"--data-dir={self.workdir / 'etcd'}",
            "--name=kubenova-local",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=kubenova-local=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        )
        self._wait_ready(f"http://127.0.0.1:{etcd_port}/health", 30, tls=False)
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--cert-dir={self.pki}",
            f"--tls-cert-file={self.serving_cert}",
            f"--tls-private-key-file={self.serving_key}",
            f"--client-ca-file={self.ca_file}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={self.sa_pub}",
            f"--service-account-signing-key-file={self.sa_key}",
            f"--api-audiences={ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--requestheader-client-ca-file={self.front_proxy_ca}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self.front_proxy_cert}",
            f"--proxy-client-key-file={self.front_proxy_key}",
            "--allow-privileged=true",
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
            "DefaultStorageClass,ResourceQuota,MutatingAdmissionWebhook,"
            "ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,PodSecurity",
            "--profiling=false",
            "--v=1",
        )
        self._wait_ready(f"{self.server}/readyz", 90)
        if controllers:
            self.start_controllers()
        self.startup_seconds = time.monotonic() - started

    def start_controllers(self) -> None:
        cm_kubeconfig = self.workdir / "kube-controller-manager.kubeconfig"
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={cm_kubeconfig}",
            f"--authentication-kubeconfig={cm_kubeconfig}",
            f"--authorization-kubeconfig={cm_kubeconfig}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.sa_key}",
            f"--root-ca-file={self.ca_file}",
            f"--cluster-signing-cert-file={self.ca_file}",
            f"--cluster-signing-key-file={self.ca_key_file}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--controllers=*,bootstrapsigner,tokencleaner",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--concurrent-namespace-syncs=5",
        )
        sched_kubeconfig = self.workdir / "kube-scheduler.kubeconfig"
        self._spawn(
            "kube-scheduler",
            f"--kubeconfig={sched_kubeconfig}",
            f"--authentication-kubeconfig={sched_kubeconfig}",
            f"--authorization-kubeconfig={sched_kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
        )
        # Early failures (bad flags) show within a second or two.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            self._check_alive()
            time.sleep(0.2)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for _, proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in reversed(self._procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def pids(self) -> list[int]:
        return [proc.pid for _, proc in self._procs]

    def __enter__(self) -> LocalControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ExistingCluster:
    """A cluster somebody else runs (kind, k3d, a real one): nothing to start or stop."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def stop(self) -> None:
        pass


def cluster_from_env() -> LocalControlPlane | ExistingCluster:
    """KUBENOVA_KUBECONFIG points at an existing cluster; otherwise start our own."""
    existing = os.environ.get("KUBENOVA_KUBECONFIG")
    if existing:
        return ExistingCluster(Path(existing))
    return LocalControlPlane()


class KubectlError(RuntimeError):
    pass


def kubectl(
    *args: str, kubeconfig: Path, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Our own kubectl (the machine may have none), from the same binary. With check,
    a failure raises with kubectl's own message."""
    result = subprocess.run(
        [str(controlplane_binary()), "kubectl", f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        input=input,
        check=False,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result
