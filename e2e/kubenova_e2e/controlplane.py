"""Start etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback.

    plane = LocalControlPlane()
    plane.start(controllers=False)   # API server up; install CRDs now
    plane.start_controllers()        # then the controller-manager and scheduler
    ...                              # plane.kubeconfig is an admin kubeconfig
    plane.stop()

Every process runs in its own process group, dies with its parent (PDEATHSIG), and logs
to a file in the work dir; one that exits early is reported with its last log lines.
Once started, the controller-manager and scheduler are brought back when they exit, as
the kubelet brings back static pods: both exit on purpose when the API server goes
away at the wrong moment (the controller-manager's client builder is fatal), and a
fault test that restarts the API server or etcd must not lose them.
The controller-manager can start later than the API server because its garbage
collector rescans API groups only every ~30 s: CRDs installed first are seen at once.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import yaml

from .build import REPO, cache_dir, controlplane_binary
from .pki import ClusterPKI

SERVICE_CIDR = "10.0.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"
# What the API server records (docs/security.md#audit), as a real cluster would use it.
AUDIT_POLICY = REPO / "manifests" / "audit" / "policy.yaml"
# The audit log is rotated at this size (MB), one old file kept: a run's log stays
# under 200 MB however long it runs.
AUDIT_LOG_MAX_MB = 100
_PR_SET_PDEATHSIG = 1
# What the kubelet would restart (restartPolicy: Always), and how often it looks.
SUPERVISED = ("kube-controller-manager", "kube-scheduler")
SUPERVISE_INTERVAL = 0.5
# Loaded here, not in the forked child: dlopen after fork can deadlock on a lock some
# other thread of the parent held at fork time.
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: children then outlive a parent killed with SIGKILL
    _LIBC = None


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick, so parallel runs differ)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the Python process that started it dies, so
    a test run killed with SIGKILL leaves no apiserver holding ports and memory. (The
    kernel tracks the forking thread, so start the plane from a long-lived thread.)"""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ControlPlaneError(RuntimeError):
    """A component failed to start or exited; the message carries its last log lines."""


class LocalControlPlane:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback.

    Paths and the server URL are known from construction; the files exist after
    `start()`. `stop()` is idempotent and also runs at interpreter exit.
    """

    def __init__(
        self, binary: Path | None = None, workdir: Path | None = None, keep: bool = False
    ) -> None:
        self.binary = binary or controlplane_binary()
        if workdir is None:
            (cache_dir() / "run").mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="cp-", dir=cache_dir() / "run"))
        self.workdir = workdir
        self.keep = keep
        self.pki = ClusterPKI(workdir / "pki")
        self.ca_file, self.ca_key_file = self.pki.ca_cert, self.pki.ca_key
        self.admin_cert, self.admin_key = self.pki.admin_cert, self.pki.admin_key
        self.front_proxy_ca = self.pki.front_proxy_ca
        self.kubeconfig = workdir / "kubeconfig"
        self.audit_policy = AUDIT_POLICY
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.startup_seconds: float | None = None
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._args: dict[str, tuple[str, ...]] = {}
        self.etcd_url = ""
        self._stopped = False
        # Guards _procs against the supervisor thread; held only around list edits.
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self.respawns: dict[str, int] = {}
        self._started_at: dict[str, float] = {}
        atexit.register(self.stop)

    @property
    def audit_log(self) -> Path:
        """Where the API server writes its audit log (JSON lines, one event each)."""
        return self.workdir / "audit.log"

    def audit_log_files(self) -> list[Path]:
        """The audit log and the one rotated copy it may have (`audit-<time>.log`),
        oldest first: read them all to see every event of the run."""
        rotated = sorted(self.workdir.glob("audit-*.log"))
        return [*rotated, self.audit_log] if self.audit_log.exists() else rotated

    # --- certificates and kubeconfigs -------------------------------------------

    def _write_pki(self) -> None:
        self.pki.generate()
        self._write_kubeconfig(self.kubeconfig, self.admin_cert, self.admin_key)
        for component in ("kube-controller-manager", "kube-scheduler"):
            cert, key = self.pki.component(component)
            self._write_kubeconfig(self.workdir / f"{component}.kubeconfig", cert, key)

    def _write_kubeconfig(self, path: Path, cert: Path, key: Path) -> None:
        """Certificates embedded, so the file can be copied elsewhere and still work."""

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
        self._args[component] = args
        self._started_at[component] = time.monotonic()
        log = (self.workdir / f"{component}.log").open("ab")
        proc = subprocess.Popen(
            [str(self.binary), component, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, no locks taken
        )
        log.close()
        with self._lock:
            self._procs.append((component, proc))
            stopped = self._stopped
        if stopped:  # the supervisor raced stop(): nobody would stop this one
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _check_alive(self) -> None:
        """Fail fast with the log of a component that died, instead of timing out later
        (a supervised one is not reported once the supervisor runs: it comes back)."""
        supervised = SUPERVISED if self._supervisor is not None else ()
        with self._lock:
            procs = list(self._procs)
        for component, proc in procs:
            if proc.poll() is not None and component not in supervised:
                raise ControlPlaneError(
                    f"{component} exited with {proc.returncode}:\n{self.log_tail(component)}"
                )

    def log_tail(self, component: str, lines: int = 40) -> str:
        """The end of a component's log (`etcd`, `kube-apiserver`, ...)."""
        path = self.workdir / f"{component}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _admin_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.admin_cert), str(self.admin_key))
        return context

    def _wait_ready(
        self, component: str, url: str, timeout: float, context: ssl.SSLContext | None = None
    ) -> None:
        """Poll `url` until it answers 200, failing at once if any component has died."""
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
        raise ControlPlaneError(
            f"{url} not ready after {timeout}s ({last}); {component} log:\n"
            f"{self.log_tail(component)}"
        )

    def start(self, controllers: bool = True) -> None:
        """Start etcd and the API server and wait for /readyz; with `controllers`, also the
        controller-manager and scheduler. On failure everything started is stopped."""
        try:
            self._start(controllers)
        except BaseException:
            self.stop()
            raise

    def _start(self, controllers: bool) -> None:
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
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._wait_ready("etcd", f"{self.etcd_url}/health", 30)
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--cert-dir={self.pki.directory}",
            f"--tls-cert-file={self.pki.apiserver_cert}",
            f"--tls-private-key-file={self.pki.apiserver_key}",
            f"--client-ca-file={self.ca_file}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={self.pki.sa_public}",
            f"--service-account-signing-key-file={self.pki.sa_private}",
            f"--api-audiences={ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--requestheader-client-ca-file={self.front_proxy_ca}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self.pki.front_proxy_cert}",
            f"--proxy-client-key-file={self.pki.front_proxy_key}",
            "--allow-privileged=true",
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
            "DefaultStorageClass,ResourceQuota,MutatingAdmissionWebhook,"
            "ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,PodSecurity",
            "--profiling=false",
            f"--audit-policy-file={self.audit_policy}",
            f"--audit-log-path={self.audit_log}",
            f"--audit-log-maxsize={AUDIT_LOG_MAX_MB}",
            "--audit-log-maxbackup=1",
            "--v=1",
        )
        # 60 s is plenty on an idle machine (~5 s); 90 s covers two cores shared with a
        # test run's operator and a second control plane.
        self._wait_ready("kube-apiserver", f"{self.server}/readyz", 90, self._admin_tls())
        if controllers:
            self.start_controllers()
        self.startup_seconds = time.monotonic() - started

    def start_controllers(self) -> None:
        """Start the controller-manager and scheduler (after CRDs are installed)."""
        cm_kubeconfig = self.workdir / "kube-controller-manager.kubeconfig"
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={cm_kubeconfig}",
            f"--authentication-kubeconfig={cm_kubeconfig}",
            f"--authorization-kubeconfig={cm_kubeconfig}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki.sa_private}",
            f"--root-ca-file={self.ca_file}",
            f"--cluster-signing-cert-file={self.ca_file}",
            f"--cluster-signing-key-file={self.ca_key_file}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={(cm_port := free_port())}",
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
            f"--secure-port={(sched_port := free_port())}",
        )
        # Both serve /healthz to anyone, over a self-signed certificate they make in
        # memory at start-up: nothing to verify it against, and it is loopback.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        for component, port in (
            ("kube-controller-manager", cm_port),
            ("kube-scheduler", sched_port),
        ):
            self._wait_ready(component, f"https://127.0.0.1:{port}/healthz", 60, insecure)
        self._supervisor = threading.Thread(
            target=self._supervise, name="controlplane-supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self) -> None:
        """Start again, with the same arguments, a controller-manager or scheduler that
        exited, backing off as the kubelet does (0.5 s doubling to 10 s; a component
        that ran 30 s starts over). Each exit is counted in `respawns`."""
        delay = dict.fromkeys(SUPERVISED, SUPERVISE_INTERVAL)
        not_before: dict[str, float] = {}
        while not self._stopped:
            time.sleep(SUPERVISE_INTERVAL)
            now = time.monotonic()
            with self._lock:
                if self._stopped:
                    return
                exited = [
                    (i, c)
                    for i, (c, p) in enumerate(self._procs)
                    if c in SUPERVISED and p.poll() is not None
                ]
            for index, component in exited:
                if now < not_before.get(component, 0.0):
                    continue
                started_at = self._started_at.get(component, 0.0)
                delay[component] = (
                    SUPERVISE_INTERVAL if now - started_at > 30 else min(delay[component] * 2, 10)
                )
                not_before[component] = now + delay[component]
                self.respawns[component] = self.respawns.get(component, 0) + 1
                self._replace(index, component)

    def _replace(self, index: int, component: str) -> None:
        """Spawn `component` again in the start-order slot `index` (stop() walks the
        list backwards, so order matters)."""
        self._spawn(component, *self._args[component])
        with self._lock:
            self._procs.pop(index)
            self._procs.insert(index, self._procs.pop())

    def stop(self) -> None:
        """SIGTERM each process group in reverse start order, waiting for each to exit;
        SIGKILL whatever is still running once 10 s have passed.

        One at a time, because an apiserver whose etcd is already gone spends ~20 s
        retrying before it exits; with etcd still up it drains in about a second.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            procs = list(self._procs)
        atexit.unregister(self.stop)
        deadline = time.monotonic() + 10
        for _, proc in reversed(procs):
            if proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=max(0.5, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, component: str, *, kill: bool = True, down_seconds: float = 0.0) -> float:
        """Stop one component (SIGKILL, or SIGTERM with `kill=False`), keep it down for
        `down_seconds`, start it again with the same arguments (same ports, same data
        directory) and wait until it is ready. Returns the seconds it was unavailable."""
        started = time.monotonic()
        self.take_down(component, kill=kill)
        time.sleep(down_seconds)
        self.bring_back(component)
        return time.monotonic() - started

    def take_down(self, component: str, *, kill: bool = True) -> None:
        """Stop one component (SIGKILL, or SIGTERM with `kill=False`) and wait for it
        to exit; `bring_back` starts it again. Not for a supervised component: the
        supervisor would start it first."""
        if component in SUPERVISED and self._supervisor is not None:
            raise ValueError(f"{component} is supervised: kill its pid, it comes back")
        with self._lock:
            proc = next(p for c, p in self._procs if c == component)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        proc.wait(timeout=30)

    def bring_back(self, component: str) -> None:
        """Start a component `take_down` stopped, with the same arguments, and wait
        until it, and the API server in front of it, answer ready."""
        with self._lock:
            index = next(i for i, (c, _) in enumerate(self._procs) if c == component)
        self._replace(index, component)
        if component == "etcd":
            self._wait_ready("etcd", f"{self.etcd_url}/health", 60)
        if component in ("etcd", "kube-apiserver"):
            # After etcd comes back the API server needs a moment to reconnect; a test
            # that goes on before /readyz sees 503s it did not cause.
            self._wait_ready("kube-apiserver", f"{self.server}/readyz", 90, self._admin_tls())

    def etcd(self, method: str, body: dict[str, object]) -> dict[str, object]:
        """One call of etcd's v3 JSON gateway (`kv/range`, `kv/compaction`, ...)."""
        request = urllib.request.Request(
            f"{self.etcd_url}/v3/{method}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))

    def compact_etcd(self) -> int:
        """Compact etcd at its current revision (physically): every older
        resourceVersion is gone, so a watch resuming from one is answered 410 Gone.
        Returns the revision."""
        header = self.etcd("kv/range", {"key": "AA==", "limit": 1})["header"]
        revision = int(header["revision"])  # type: ignore[index]
        self.etcd("kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def pids(self) -> list[int]:
        """The component processes' ids (each also leads its own process group)."""
        with self._lock:
            return [proc.pid for _, proc in self._procs]

    def component_pids(self) -> dict[str, int]:
        """Each running component's process id, by component (etcd, kube-apiserver, ...)."""
        with self._lock:
            return {component: proc.pid for component, proc in self._procs}

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

    def __init__(self, kubeconfig: Path | None = None) -> None:
        path = kubeconfig or os.environ.get("KUBENOVA_KUBECONFIG")
        if not path:
            raise ValueError("no kubeconfig given and KUBENOVA_KUBECONFIG is not set")
        self.kubeconfig = Path(path)

    def stop(self) -> None:
        """Leave the cluster running: it is not ours."""


def cluster_from_env(kubeconfig: Path | None = None) -> LocalControlPlane | ExistingCluster:
    """An existing cluster when `kubeconfig` or KUBENOVA_KUBECONFIG names one; otherwise a
    (not yet started) local control plane, so tests also run against kind or a real one."""
    if kubeconfig or os.environ.get("KUBENOVA_KUBECONFIG"):
        return ExistingCluster(kubeconfig)
    return LocalControlPlane()


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message is its stderr."""


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


def wait_established(kubeconfig: Path, *crds: str, timeout: float = 60) -> None:
    """Wait until the CRDs (`crd/<name>`) are Established. `kubectl wait` fails at once,
    instead of waiting, on a CRD the API server has not given conditions yet
    (".status.conditions accessor error"), as happens right after it is applied: asked
    again until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = kubectl(
            "wait",
            "--for=condition=Established",
            f"--timeout={max(1, int(deadline - time.monotonic()))}s",
            *crds,
            kubeconfig=kubeconfig,
            check=False,
        )
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise KubectlError(f"CRDs not established: {result.stderr.strip()}")
        time.sleep(0.5)


def apply_manifest(manifest: str, kubeconfig: Path) -> None:
    """Server-side apply of YAML text, taking over fields another manager set (these
    are objects the harness owns)."""
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=manifest,
        kubeconfig=kubeconfig,
    )


def stop_process(proc: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL with `kill`), then SIGKILL if it is not gone in 20 s."""
    if proc is None or proc.poll() is not None:
        return
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
