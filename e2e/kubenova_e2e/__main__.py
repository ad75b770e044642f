"""`python -m kubenova_e2e {demo,up,build}`: Kubenova on a local control plane.

demo   build and start the control plane, install Kubenova, start the operator,
       apply examples/, start KubeVela and deploy an Application, show what it
       built, and keep running until Ctrl-C
up     only the control plane (for developing against it)
build  only build the binaries (control plane, vela-core, kwok, kstatus, argolua, Flux, helm,
       promtool, Capsule and, where its source is on the machine, capsule-proxy) and,
       where podman is installed, the operator image (e2e/kubenova_e2e/image.py)
image  only the operator image, with podman (`make image`)
bench  the benchmark (docs/benchmarks.md): `make bench`, or --quick, --n 10 ...
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from . import image
from .build import (
    REPO,
    PeerSourceMissing,
    argolua_binary,
    cache_dir,
    capsule_binary,
    capsule_proxy_binary,
    controlplane_binary,
    flux_binaries,
    helm_binary,
    kstatus_binary,
    kwok_binary,
    promtool_binary,
    vela_core_binary,
)
from .capsule import Capsule, CapsuleProxy, try_host_lock
from .controlplane import ControlPlaneError, KubectlError, LocalControlPlane, kubectl
from .kubevela import Peer, start_kubevela
from .platform import OPERATOR_NAMESPACE, OPERATOR_USERNAME, OperatorProcess, install_platform

# How long `make run` waits for another run (a test session, another demo) to let go of
# Capsule's and capsule-proxy's fixed host ports before it goes on without them.
CAPSULE_LOCK_WAIT = 60.0
PROXY_CA_SECRET = "capsule-proxy-ca"


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m" if sys.stdout.isatty() else f"==> {message}", flush=True)


def show(kubeconfig: Path, *args: str) -> None:
    print(f"$ kubectl {' '.join(args)}", flush=True)
    result = kubectl(*args, kubeconfig=kubeconfig, check=False)
    print((result.stdout or result.stderr).rstrip() + "\n", flush=True)


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def apply_examples(kc: Path) -> None:
    """examples/*.yaml: Tenants first (Projects live in their owner namespaces), each
    batch applied and waited for."""
    examples = sorted((REPO / "examples").glob("*.yaml"))
    tenants = [p for p in examples if "kind: Tenant" in p.read_text()]
    batches = (
        (tenants, ["tenants.kubenova.io", "--all"]),
        ([p for p in examples if p not in tenants], ["projects.kubenova.io", "--all", "-A"]),
    )
    for paths, what in batches:
        say(f"applying {', '.join(p.name for p in paths)}")
        for path in paths:
            kubectl("apply", "--server-side", "-f", str(path), kubeconfig=kc)
        kubectl("wait", "--for=condition=Ready", "--timeout=90s", *what, kubeconfig=kc)
    kubectl(
        "wait",
        "--for=jsonpath={.status.projectCount}=2",
        "--timeout=60s",
        "tenants.kubenova.io/acme",
        kubeconfig=kc,
    )


def deploy_application(kc: Path, logdir: Path, peers: list[Peer]) -> None:
    """KubeVela for real (its processes go to `peers`, for the caller to stop), and one
    Application deployed by an app user."""
    say("starting KubeVela (vela-core) and kwok's fake node, both built from source")
    peers.extend(start_kubevela(kc, logdir))
    deployer = "system:serviceaccount:acme-owner:shop-deployer"
    say(f"deploying examples/kubevela/shop-web.yaml as the shop's app user ({deployer})")
    kubectl(
        f"--as={deployer}",
        "apply",
        "--server-side",
        "-f",
        str(REPO / "examples" / "kubevela" / "shop-web.yaml"),
        kubeconfig=kc,
    )
    kubectl(
        "wait",
        "--for=jsonpath={.status.applications.healthy}=1",
        "--timeout=180s",
        "-n",
        "acme-owner",
        "projects.kubenova.io/shop",
        kubeconfig=kc,
    )


class CapsuleDemo:
    """Capsule and capsule-proxy for the demo, when they can run here: built (Capsule
    is built like every peer; capsule-proxy only where its source is on the machine)
    and their host ports free (one of each per host: the host locks are held until the
    demo ends). The operator is pointed at the proxy before it starts, so the owner
    kubeconfig it delivers goes through it."""

    def __init__(self, kc: Path, logdir: Path, stack: contextlib.ExitStack) -> None:
        self.kc = kc
        self.logdir = logdir
        self.capsule: Capsule | None = None
        self.proxy: CapsuleProxy | None = None
        self.proxy_binary: Path | None = None
        self.operator_env: dict[str, str] = {}
        self.owner_kubeconfig: Path | None = None
        self.seconds = 0.0  # what Capsule and the proxy add to the demo
        if not try_host_lock(stack, "capsule", CAPSULE_LOCK_WAIT):
            say(
                "skipping Capsule: another run on this host holds it (Capsule binds :10080, "
                "one per host)"
            )
            return
        capsule_binary()
        administrators = [
            {"kind": "ServiceAccount", "name": OPERATOR_USERNAME},
            {"kind": "User", "name": OPERATOR_USERNAME},
        ]
        self.capsule = Capsule(kc, logdir, administrators=administrators)
        try:
            self.proxy_binary = capsule_proxy_binary()
        except PeerSourceMissing as exc:
            say(f"skipping capsule-proxy: {exc}")
            return
        if not try_host_lock(stack, "capsule-proxy", CAPSULE_LOCK_WAIT):
            say("skipping capsule-proxy: another run on this host holds it (it binds :8081)")
            return
        self.proxy = CapsuleProxy(kc, logdir)
        kubectl(
            "create",
            "secret",
            "generic",
            PROXY_CA_SECRET,
            "-n",
            OPERATOR_NAMESPACE,
            f"--from-literal=ca.crt={self.proxy.ca_pem.decode()}",
            kubeconfig=kc,
        )
        self.operator_env = {
            "KUBENOVA_CAPSULE_PROXY_URL": self.proxy.url,
            "KUBENOVA_CAPSULE_PROXY_CA_SECRET": f"{OPERATOR_NAMESPACE}/{PROXY_CA_SECRET}",
        }

    def start(self, peers: list[Peer]) -> None:
        if self.capsule is None:
            return
        started = time.monotonic()
        say("starting Capsule v0.14.0 (built from source); Kubenova syncs acme into it")
        self.capsule.install()
        peers.append(self.capsule)
        self.capsule.start()
        if self.proxy is not None and self.proxy_binary is not None:
            say(f"starting capsule-proxy v0.14.0 at {self.proxy.url}")
            peers.append(self.proxy)
            self.proxy.start(self.proxy_binary)
        kubectl(
            "wait",
            "--for=condition=Ready",  # Synced: Capsule counts every namespace of acme
            "--timeout=90s",
            "capsulesyncs.kubenova.io/acme",
            kubeconfig=self.kc,
        )
        self.seconds += time.monotonic() - started
        say(f"Capsule counts acme's namespaces ({self.seconds:.0f}s)")
        show(
            self.kc,
            "get",
            "tenants.capsule.clastix.io",
            "acme",
            "-o",
            "jsonpath=Capsule Tenant {.metadata.name}: {.status.state}, "
            "namespaces {.status.namespaces}{'\\n'}",
        )

    def show_proxy(self) -> None:
        """`kubectl get namespaces` with acme's owner kubeconfig as Kubenova delivers it
        (its server is the proxy): only acme's namespaces, once the proxy's caches have
        caught up with the RoleBindings (seconds)."""
        if self.proxy is None:
            return
        started = time.monotonic()
        say("acme's owner kubeconfig (delivered by Kubenova), through capsule-proxy")
        encoded = kubectl(
            "get",
            "secret",
            "kubenova-kubeconfigs",
            "-n",
            "acme-owner",
            "-o",
            "jsonpath={.data.owner}",
            kubeconfig=self.kc,
        ).stdout
        owner = self.logdir / "acme-owner.kubeconfig"
        owner.write_bytes(base64.b64decode(encoded))
        owner.chmod(0o600)
        self.owner_kubeconfig = owner
        expected = kubectl(
            "get", "namespaces", "-l", "kubenova.io/tenant=acme", "-o", "name", kubeconfig=self.kc
        ).stdout.split()
        deadline = time.monotonic() + 60
        while True:
            listed = kubectl("get", "namespaces", "-o", "name", kubeconfig=owner, check=False)
            if sorted(listed.stdout.split()) == sorted(expected) or time.monotonic() > deadline:
                break
            time.sleep(1)
        server = yaml.safe_load(owner.read_text())["clusters"][0]["cluster"]["server"]
        print(f"# server: {server}", flush=True)
        print(f"$ kubectl --kubeconfig={owner} get namespaces", flush=True)
        result = kubectl("get", "namespaces", kubeconfig=owner, check=False)
        print((result.stdout or result.stderr).rstrip() + "\n", flush=True)
        self.seconds += time.monotonic() - started
        say(f"Capsule and capsule-proxy added {self.seconds:.1f}s to the demo")


def show_results(kc: Path) -> None:
    say("what Kubenova built")
    show(kc, "get", "tenants.kubenova.io", "-o", "wide")
    show(kc, "get", "projects.kubenova.io", "-A")
    show(
        kc,
        "get",
        "namespaces",
        "-l",
        "kubenova.io/tenant=acme",
        "-L",
        "kubenova.io/project,kubenova.io/environment,pod-security.kubernetes.io/enforce",
    )
    show(
        kc,
        "get",
        "resourcequotas",
        "-A",
        "-l",
        "kubenova.io/tenant=acme",
        "-o",
        "custom-columns=NAMESPACE:.metadata.namespace,HARD:.spec.hard",
    )
    show(kc, "get", "rolebindings,networkpolicies,limitranges", "-n", "acme-shop-prod")
    show(kc, "get", "applications.core.oam.dev", "-A")
    show(
        kc,
        "get",
        "velasyncs.kubenova.io",
        "shop",
        "-n",
        "acme-owner",
        "-o",
        "jsonpath={range .status.applications[*]}{.namespace}/{.name}: {.phase}, "
        "healthy={.healthy}, revision {.revision}, pods: {.podSelector}{'\\n'}{end}",
    )
    show(
        kc,
        "get",
        "tenant.kubenova.io/acme",
        "-o",
        "jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}){'\\n'}{end}",
    )


def show_plugin(kc: Path) -> None:
    """The `kubectl kubenova` plugin (the package's console script `kubectl-kubenova`),
    found by kubectl on the PATH like any plugin, with the admin's kubeconfig."""
    say("the kubectl kubenova plugin")
    env = {
        **os.environ,
        "KUBECONFIG": str(kc),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for args in (["tenants"], ["usage"], ["apps", "--tenant", "acme", "-p", "shop"]):
        print(f"$ kubectl kubenova {' '.join(args)}", flush=True)
        subprocess.run(
            [str(controlplane_binary()), "kubectl", "kubenova", *args],
            env=env,
            check=False,
            timeout=120,
        )
        print(flush=True)


def demo(keep_running: bool) -> int:
    binary = controlplane_binary()
    say("starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler)")
    plane = LocalControlPlane(binary)
    operator: OperatorProcess | None = None
    peers: list[Peer] = []
    stack = contextlib.ExitStack()  # the Capsule host locks, held until the end
    try:
        started = time.monotonic()
        plane.start(controllers=False)
        say("installing Kubenova: CRDs, roles, the kubenova-system namespace")
        install_platform(plane.kubeconfig)
        plane.start_controllers()
        say(f"control plane ready in {time.monotonic() - started:.0f}s at {plane.server}")
        logdir = Path(tempfile.mkdtemp(prefix="operator-", dir=cache_dir() / "run"))
        capsule = CapsuleDemo(plane.kubeconfig, logdir, stack)
        operator = OperatorProcess(plane.kubeconfig, logdir, **capsule.operator_env)
        operator.start()
        say(f"operator started (log: {operator.log})")

        apply_examples(plane.kubeconfig)
        deploy_application(plane.kubeconfig, logdir, peers)
        # After the examples and the Application: Capsule's webhooks (failurePolicy
        # Fail) then see every namespace write, and Kubenova adopts what exists.
        capsule.start(peers)
        show_results(plane.kubeconfig)
        show_plugin(plane.kubeconfig)
        capsule.show_proxy()
        if not keep_running:
            return 0
        say("Kubenova is running. In another shell:")
        print(
            f"  export KUBECONFIG={plane.kubeconfig}\n"
            f"  alias kubectl='{binary} kubectl'\n"
            "  kubectl get kubenova -A            # everything Kubenova\n"
            f"  export PATH={Path(sys.executable).parent}:$PATH   # kubectl kubenova ...\n"
            "  kubectl kubenova tenants           # the plugin: trees, usage, apps\n"
            "  kubectl delete rolebinding kubenova:readonly -n acme-apps   # healed in ~1s\n"
            + (
                f"  kubectl --kubeconfig={capsule.owner_kubeconfig} get ns   # via capsule-proxy\n"
                if capsule.owner_kubeconfig is not None
                else ""
            )
            + f"  tail -f {operator.log}\n"
            "Ctrl-C stops the operator and the control plane.",
            flush=True,
        )
        wait_for_signal()
        return 0
    except (ControlPlaneError, KubectlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if operator is not None:
            print(
                f"operator log ({operator.log}), last lines:\n{operator.tail(30)}", file=sys.stderr
            )
            operator = None  # keep its log for a look
        return 1
    finally:
        say("stopping")
        for peer in reversed(peers):
            peer.stop()
        if operator is not None:
            operator.stop()
            shutil.rmtree(operator.log.parent, ignore_errors=True)
        plane.stop()
        stack.close()


def up(keep: bool) -> int:
    """The control plane alone, until Ctrl-C or SIGTERM; with `keep`, its work dir (logs,
    certificates, etcd data) stays for a look afterwards."""
    plane = LocalControlPlane(controlplane_binary(), keep=keep)
    with contextlib.ExitStack() as stack:
        stack.callback(plane.stop)
        try:
            plane.start()
        except ControlPlaneError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        say(f"control plane ready in {plane.startup_seconds:.1f}s at {plane.server}")
        print(
            f"  kubeconfig: {plane.kubeconfig}\n"
            f"  export KUBECONFIG={plane.kubeconfig}\n"
            f'  alias kubectl="{plane.binary} kubectl"\n'
            f"  logs: {plane.workdir}/*.log\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        wait_for_signal()
        say("stopping" + (f" (keeping {plane.workdir})" if keep else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubenova_e2e", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="the README's run command")
    run.add_argument(
        "--exit",
        action="store_true",
        help="stop after showing the results instead of running until Ctrl-C",
    )
    up_cmd = sub.add_parser("up", help="only the control plane")
    up_cmd.add_argument(
        "--keep", action="store_true", help="keep the work dir (logs, certificates) on exit"
    )
    sub.add_parser(
        "build",
        help="only build the binaries (the control plane, vela-core, kwok, kstatus, argolua, helm, "
        "promtool, Flux, Capsule, capsule-proxy) and the operator image (with podman, where "
        "installed)",
    )
    sub.add_parser("image", help="only the operator image, with podman")
    bench_cmd = sub.add_parser(
        "bench", help="the benchmark: Kubenova against a raw server-side-apply baseline"
    )
    bench_cmd.add_argument("--quick", action="store_true", help="N = 25, 50 (development)")
    bench_cmd.add_argument("--n", type=int, nargs="+", help="the tenant counts to run")
    bench_cmd.add_argument(
        "--samples", type=int, default=20, help="samples per latency (default 20)"
    )
    bench_cmd.add_argument(
        "--idle-seconds",
        type=float,
        default=60.0,
        help="the idle window in which the operator's requests are counted (default 60)",
    )
    bench_cmd.add_argument(
        "--out", help="where benchmarks.md/.json and the plots go (default docs/; --quick: cache)"
    )
    bench_cmd.add_argument(
        "--profile",
        action="store_true",
        help="sample the operator with py-spy while the largest N converges",
    )
    bench_cmd.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="no run: rewrite the report and plots from earlier runs' benchmarks.json",
    )
    args = parser.parse_args(argv)
    if args.command == "bench":
        from . import bench  # noqa: PLC0415 - matplotlib and the operator's code: only here

        return bench.main(args)
    if args.command == "demo":
        return demo(keep_running=not args.exit)
    if args.command == "up":
        return up(keep=args.keep)
    if args.command == "image":
        if (reason := image.cannot_build()) is not None:
            print(f"error: {reason}", file=sys.stderr)
            return 1
        image.build_step()
        return 0
    # The image (debootstrap, apt and pip downloads: mostly network and disk) is built
    # beside the Go peers (all CPU), not after them: on a cold 2-core machine that hides
    # most of its time.
    image_build = ImageBuild()
    image_build.start()
    for built in (
        controlplane_binary,
        vela_core_binary,
        kwok_binary,
        kstatus_binary,
        helm_binary,
        capsule_binary,
        argolua_binary,
        promtool_binary,
    ):
        print(built())
    for flux in flux_binaries():
        print(flux)
    try:
        print(capsule_proxy_binary())
    except PeerSourceMissing as exc:
        print(f"not building capsule-proxy: {exc}", file=sys.stderr)
    image_build.join()
    if image_build.error is not None:
        raise image_build.error
    return 0


class ImageBuild(threading.Thread):
    """image.build_step() on a thread of its own; its error is raised by the caller."""

    def __init__(self) -> None:
        super().__init__(name="image-build", daemon=True)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            image.build_step()
        except BaseException as exc:  # handed to the main thread, which raises it
            self.error = exc


if __name__ == "__main__":
    sys.exit(main())
