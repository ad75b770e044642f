"""Build the Go peers once per machine, cached by the hash of their sources.

The cache lives outside the checkout ($KUBENOVA_CACHE, default ~/.cache/kubenova):
CI clones afresh each time, and a binary keyed by go.mod/go.sum/*.go is rebuilt only
when those change. A cold build prints progress, never silence.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTROLPLANE_MODULE = REPO / "e2e" / "controlplane"
VELA_MODULE = REPO / "e2e" / "vela"
KWOK_MODULE = REPO / "e2e" / "kwok"
KSTATUS_MODULE = REPO / "e2e" / "kstatus"
HELM_MODULE = REPO / "e2e" / "helm"
CAPSULE_MODULE = REPO / "e2e" / "capsule"
# capsule-proxy: the module proxy serves no version of it; its v0.14.0 source lies next
# to the project (../shared/peers, see its README), never in it. Where it is absent (a
# user's machine) the proxy is not built and its tests skip, saying so.


def _peer_source(name: str) -> Path:
    """Where a peer's source shared beside the project lies: $KUBENOVA_PEERS/<name>, else
    ../shared/peers/<name> next to this checkout, else next to the checkout it was cloned
    from (a CI clone in a scratch directory has its origin on the same machine). The
    first candidate is returned when none exists, so the message names it."""
    candidates = [REPO.parent / "shared" / "peers" / name]
    if peers := os.environ.get("KUBENOVA_PEERS"):
        candidates.insert(0, Path(peers) / name)
    origin = subprocess.run(
        ["git", "-C", str(REPO), "remote", "get-url", "origin"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / "shared" / "peers" / name)
    return next((c for c in candidates if c.is_dir()), candidates[0])


CAPSULE_PROXY_SOURCE = _peer_source("capsule-proxy-v0.14.0")
# The two go.mod edits (../shared/peers/README.md) that build capsule-proxy v0.14.0
# against Capsule v0.14.0, the only Capsule the module proxy serves: the genproto pin
# settles an ambiguous import that tidy then removes again.
CAPSULE_PROXY_REQUIRES = (
    "github.com/projectcapsule/capsule@v0.14.0",
    "google.golang.org/genproto@v0.0.0-20260526163538-3dc84a4a5aaa",
)
FLUX_MODULE = REPO / "e2e" / "flux"
ARGOLUA_MODULE = REPO / "e2e" / "argolua"
PROMTOOL_MODULE = REPO / "e2e" / "promtool"
PROMTOOL_PACKAGE = "github.com/prometheus/prometheus/cmd/promtool"
# The module proxy serves KubeVela v1.10.1 and the forks its replace block names, but
# the checksum database has no record of them; go.sum pins their hashes instead.
# Capsule likewise (the proxy serves only its v0.14.0).
NO_SUMDB = (
    "github.com/oam-dev/kubevela,github.com/oam-dev/stern,github.com/kmodules/apiserver-runtime,"
    "github.com/projectcapsule"
)
_TAIL_LINES = 30


class BuildError(RuntimeError):
    """`go build` failed; the message names the log and carries its tail."""


class PeerSourceMissing(BuildError):
    """A peer's source is not on this machine (it is not served by the module proxy):
    the peer cannot exist here, and what needs it skips with this message."""


def cache_dir() -> Path:
    """$KUBENOVA_CACHE or ~/.cache/kubenova: outside the checkout, so fresh clones reuse it."""
    return Path(os.environ.get("KUBENOVA_CACHE", Path.home() / ".cache" / "kubenova"))


def source_key(module_dir: Path) -> str:
    """16 hex digits of sha256 over go.mod, go.sum and the *.go files (names and contents):
    any change to what is built, or to a pinned version, gives a new binary."""
    digest = hashlib.sha256()
    files = ["go.mod", "go.sum", *sorted(p.name for p in module_dir.glob("*.go"))]
    for name in files:
        digest.update(name.encode() + b"\0" + (module_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _version_ldflags(module_dir: Path) -> list[str]:
    """Stamp the Kubernetes version the module pins into the binaries, as the upstream
    release build does, so `kubectl version` and clients see v1.34.x, not v0.0.0."""
    match = re.search(
        r"^\s*k8s\.io/kubernetes v(\d+)\.(\d+)\.(\S+)", (module_dir / "go.mod").read_text(), re.M
    )
    if not match:
        return []
    major, minor, patch = match.groups()
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion=v{major}.{minor}.{patch}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return flags


def ensure_binary(
    module_dir: Path,
    name: str,
    package: str = ".",
    ldflags: tuple[str, ...] = (),
    tags: str = "",
) -> Path:
    """The path of `name` built from `module_dir` (its main package, or `package`: a
    command of a module it requires, linked with `ldflags` too, built with the Go build
    `tags`, e.g. to leave out parts of a big upstream program), building it first if
    needed.

    `package`: what to build, by default the module's own main package; a `tool`
    directive's package path builds an upstream command at the version go.mod pins.
    `tags`: Go build tags (e.g. to leave out parts of a big upstream program).

    A file lock serialises builds across processes (two pytest workers, a test run and
    `make run`): the second waits and then finds the first one's binary.
    """
    key = source_key(module_dir)
    if ldflags or tags:
        key += "-" + hashlib.sha256("\n".join([*ldflags, tags]).encode()).hexdigest()[:8]
    return _cached(
        name, key, lambda binary: _build(module_dir, name, binary, package, ldflags, tags=tags)
    )


def _cached(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """The cache's binary `name` for `key`, made by `build(path)` first if it is not
    there yet, under a file lock: another process may be building it."""
    bin_dir = cache_dir() / "bin" / f"{name}-{key}"
    binary = bin_dir / name
    if os.access(binary, os.X_OK):
        return binary
    bin_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir() / "bin" / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.access(binary, os.X_OK):
            build(binary)
    return binary


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


class _Progress:
    """Counts what `go build -v` reports and shows it: one status line rewritten in place
    on a terminal, a plain line every 10 s in a CI log. A timer, not the output, drives
    it, so the long silent link step still shows the clock moving."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.interval = 2.0 if self.tty else 10.0
        self.packages = 0
        self.downloads = 0

    def count(self, line: str) -> None:
        # -v names each package as it compiles; other lines are "go: downloading
        # <module>", "# <package>" headers and compiler errors.
        if line.startswith("go: downloading"):
            self.downloads += 1
        elif not line.startswith(("go: ", "#", " ", "\t")) and ".go:" not in line:
            self.packages += 1

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}m{seconds % 60:02d}s"

    def show(self) -> None:
        fetched = f"{self.downloads} modules downloaded, " if self.downloads else ""
        line = f"building {self.name}: {fetched}{self.packages} packages compiled"
        line += f" ({self.elapsed()})"
        print(
            f"\r\033[K{line}" if self.tty else line,
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    def done(self, message: str) -> None:
        print(f"\r\033[K{message}" if self.tty else message, file=sys.stderr, flush=True)


def _build(
    module_dir: Path,
    name: str,
    binary: Path,
    package: str = ".",
    ldflags: tuple[str, ...] = (),
    *,
    tags: str = "",
) -> None:
    if shutil.which("go") is None:
        raise BuildError(f"building {name} needs Go (1.26 or newer) on PATH")
    env = {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod",
        "GONOSUMDB": NO_SUMDB,
    }
    tmp = binary.with_name(f".{name}.partial")
    log_path = binary.parent / "build.log"
    flags = " ".join(["-s", "-w", *_version_ldflags(module_dir), *ldflags])
    cmd = ["go", "build", "-trimpath", f"-ldflags={flags}", "-v", "-o", str(tmp)]
    cmd += [f"-tags={tags}"] if tags else []
    cmd.append(package)
    print(
        f"building {name} from {_shown(module_dir)} (first time on this "
        f"machine: a few minutes; log {log_path})",
        file=sys.stderr,
        flush=True,
    )
    progress = _Progress(name)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=module_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.PIPE,
            text=True,
        )

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                log.write(line)
                progress.count(line)

        reader = threading.Thread(target=pump, name=f"go-build-{name}", daemon=True)
        reader.start()
        try:
            while True:
                try:
                    code = proc.wait(timeout=progress.interval)
                    break
                except subprocess.TimeoutExpired:
                    progress.show()
        except BaseException:  # Ctrl-C: do not leave the compiler running
            proc.kill()
            proc.wait()
            raise
        reader.join()
    if code != 0:
        progress.done(f"building {name} failed after {progress.elapsed()} (exit {code})")
        tail = "\n".join(log_path.read_text().splitlines()[-_TAIL_LINES:])
        raise BuildError(f"go build of {name} failed (exit {code}); log {log_path}:\n{tail}")
    tmp.rename(binary)  # atomic: a killed build never leaves a broken binary behind
    progress.done(f"built {name} ({progress.packages} packages) in {progress.elapsed()}: {binary}")


def controlplane_binary() -> Path:
    """The multi-call `k8s` binary (etcd, kube-apiserver, ..., kubectl)."""
    return ensure_binary(CONTROLPLANE_MODULE, "k8s")


def vela_core_binary() -> Path:
    """KubeVela's vela-core (cmd/core of github.com/oam-dev/kubevela)."""
    return ensure_binary(VELA_MODULE, "vela-core")


def kwok_binary() -> Path:
    """kwok, the fake kubelet (sigs.k8s.io/kwok)."""
    return ensure_binary(KWOK_MODULE, "kwok")


def kstatus_binary() -> Path:
    """kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status): the health rules Flux
    applies, as a filter from JSON objects to verdicts (see kubenova_e2e.kstatus)."""
    return ensure_binary(KSTATUS_MODULE, "kstatus")


def _pinned(module: Path, path: str) -> str:
    """The version `module`'s go.mod requires of `path` (without the v)."""
    match = re.search(rf"^\s*{re.escape(path)} v(\S+)", (module / "go.mod").read_text(), re.M)
    if not match:
        raise BuildError(f"{_shown(module)}/go.mod does not require {path}")
    return match.group(1)


def helm_binary() -> Path:
    """helm (helm.sh/helm/v3 cmd/helm), for the chart's tests; stamped as Helm's own
    release build does, with its version and the Kubernetes version of its client
    libraries (`helm template`'s default .Capabilities.KubeVersion, else v1.20)."""
    major, minor, _ = _pinned(HELM_MODULE, "k8s.io/client-go").split(".", 2)
    kube = (str(int(major) + 1), minor)  # client-go v0.37 is Kubernetes 1.37
    flags = [
        f"-X helm.sh/helm/v3/internal/version.version=v{_pinned(HELM_MODULE, 'helm.sh/helm/v3')}"
    ]
    for pkg in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        flags += [f"-X {pkg}.k8sVersionMajor={kube[0]}", f"-X {pkg}.k8sVersionMinor={kube[1]}"]
    return ensure_binary(HELM_MODULE, "helm", "helm.sh/helm/v3/cmd/helm", tuple(flags))


def capsule_binary() -> Path:
    """Capsule's controller, v0.14.0 (github.com/projectcapsule/capsule/cmd/controller,
    a `tool` of the e2e/capsule module)."""
    return ensure_binary(
        CAPSULE_MODULE, "capsule", "github.com/projectcapsule/capsule/cmd/controller"
    )


def _tree_key(root: Path) -> str:
    """16 hex digits of sha256 over go.mod, go.sum and every *.go file below `root`."""
    digest = hashlib.sha256(" ".join(CAPSULE_PROXY_REQUIRES).encode())
    files = [root / "go.mod", root / "go.sum", *sorted(root.rglob("*.go"))]
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def capsule_proxy_binary() -> Path:
    """capsule-proxy v0.14.0, built from a copy of ../shared/peers/capsule-proxy-v0.14.0
    in the cache with the README's go.mod edits (the source is never copied into the
    project). Raises PeerSourceMissing where that folder is absent."""
    source = CAPSULE_PROXY_SOURCE
    if not (source / "go.mod").is_file():
        raise PeerSourceMissing(
            f"capsule-proxy needs its source in {source} (the module proxy serves no "
            "capsule-proxy version; see ../shared/peers/README.md), and it is absent here"
        )
    name, key = "capsule-proxy", _tree_key(source)

    def build(binary: Path) -> None:
        # The README's go.mod edits, made to a copy in the cache.
        work = cache_dir() / "src" / f"{name}-{key}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work, ignore=shutil.ignore_patterns(".git"))
        env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GONOSUMDB": NO_SUMDB}
        edit = ["go", "mod", "edit", *(f"-require={r}" for r in CAPSULE_PROXY_REQUIRES)]
        for cmd in (edit, ["go", "mod", "tidy"]):
            result = subprocess.run(
                cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1200, check=False
            )
            if result.returncode != 0:
                raise BuildError(f"{' '.join(cmd)} in {work} failed:\n{result.stderr[-3000:]}")
        _build(work, name, binary)

    return _cached(name, key, build)


def argolua_binary() -> Path:
    """Argo CD's Lua runtime (github.com/yuin/gopher-lua) running health scripts as Argo
    CD does (see kubenova_e2e.argocd)."""
    return ensure_binary(ARGOLUA_MODULE, "argolua")


def flux_binaries() -> tuple[Path, Path]:
    """Flux's source-controller and kustomize-controller, from one module (e2e/flux) so
    the second build reuses the first one's compiled Kubernetes libraries."""
    return (
        ensure_binary(FLUX_MODULE, "source-controller", "github.com/fluxcd/source-controller"),
        ensure_binary(
            FLUX_MODULE, "kustomize-controller", "github.com/fluxcd/kustomize-controller"
        ),
    )


def promtool_binary() -> Path:
    """Prometheus' promtool (github.com/prometheus/prometheus/cmd/promtool, the version
    e2e/promtool/go.mod pins), for `promtool check|test rules` and `check metrics`.
    Built without the service-discovery plugins (tag remove_all_sd; promtool's rule
    and metrics commands do not use them), which leaves out the cloud SDKs."""
    return ensure_binary(PROMTOOL_MODULE, "promtool", PROMTOOL_PACKAGE, tags="remove_all_sd")


def module_dir(pinned_by: Path, path: str) -> Path:
    """Where the Go module `path`, at the version `pinned_by`'s go.mod pins, lies in the
    module cache (downloaded if needed): for what a peer ships besides its code (CRDs,
    definitions, kwok's stages)."""
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GONOSUMDB": NO_SUMDB}
    result = subprocess.run(
        ["go", "mod", "download", "-json", path],
        cwd=pinned_by,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Dir" not in info:
        raise BuildError(
            f"cannot download {path} (pinned in {_shown(pinned_by)}/go.mod): "
            f"{info.get('Error') or result.stderr.strip()}"
        )
    return Path(info["Dir"])
