"""The operator's container image, built with podman from the repository's Dockerfile
and run the way a pod runs it.

No image registry is reachable here, so the Dockerfile's base (`python:3.11-slim` for
Docker users) is replaced by a stand-in with the same interface, passed as its
PYTHON_IMAGE build argument: Debian bookworm (`debootstrap --variant=minbase`) with
Debian's Python 3.11 (`python3`, `python3-venv`, `python-is-python3`). Its root
filesystem is kept as a tarball under $KUBENOVA_CACHE, keyed by everything that defines
it, and imported into podman's storage when podman does not have it yet. Both the base
and the operator image are built by `python -m kubenova_e2e build` (`make controlplane`,
run before pytest by `make test` and `.ci/run`); the e2e test's own build then only
redoes the layers the source changed.

podman runs with `--runtime runc --cgroup-manager=cgroupfs` (crun fails on a hybrid
cgroup layout; there is no systemd) and needs `default_ulimits = []` in
/etc/containers/containers.conf where the sandbox may not raise rlimits (.ci/run
writes it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .build import REPO, BuildError, cache_dir

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
BASE_REPOSITORY = "localhost/kubenova-python-base"
OPERATOR_IMAGE = "localhost/kubenova-operator:e2e"
SUITE = "bookworm"  # Python 3.11, as python:3.11-slim
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The machine's CA bundle goes into the stand-in base, so pip inside the build trusts
# what the machine trusts (a TLS-inspecting egress proxy, say). Part of the cache key.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What a slim image leaves out: package caches and lists, documentation, translations.
TRIMMED = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
           "usr/share/info", "usr/share/locale")  # fmt: skip
# Bump when the recipe below changes in a way the key does not see.
RECIPE_VERSION = 1
SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# Kubernetes' default terminationGracePeriodSeconds: the SIGTERM-to-SIGKILL budget.
GRACE_SECONDS = 30
_HEARTBEAT = 30.0


def cannot_build() -> str | None:
    """Why the image cannot be built or run on this machine, or None: podman is not
    installed, or the stand-in base is neither built nor buildable (debootstrap needs
    root, once). Build failures are not reasons: they raise."""
    if shutil.which("podman") is None:
        return (
            "podman is not installed (.ci/run installs it: apt-get install podman runc debootstrap)"
        )
    tarball = cache_dir() / "images" / f"python-base-{base_key()}.tar.gz"
    if os.geteuid() != 0 and not tarball.is_file() and not image_exists(base_image_name()):
        return (
            "the stand-in Python base is not built, and building it needs root "
            "(debootstrap): run `python -m kubenova_e2e image` as root once"
        )
    return None


def mirror_from_sources(sources: dict[str, str]) -> str | None:
    """The Debian archive this machine's apt uses, from the texts of
    /etc/apt/sources.list and /etc/apt/sources.list.d/* (name -> text): the first `deb`
    entry of the main archive (not -security, -updates or -backports), in the one-line
    or the deb822 format. None when there is none (another distribution, say)."""

    def main_archive(uri: str, suite: str) -> bool:
        return "security" not in uri and "-" not in suite and uri.startswith("http")

    for name, text in sorted(sources.items()):
        if name.endswith(".sources"):
            for paragraph in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in paragraph.splitlines():
                    if line.startswith("#") or ":" not in line or line[0].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" not in fields.get("types", "").split():
                    continue
                for uri in fields.get("uris", "").split():
                    if any(main_archive(uri, s) for s in fields.get("suites", "").split()):
                        return uri.rstrip("/")
        elif name.endswith(".list"):
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and main_archive(words[1], words[2]):
                    return words[1].rstrip("/")
    return None


def debian_mirror() -> str:
    """$KUBENOVA_DEBIAN_MIRROR, else the archive this machine's apt uses, else
    deb.debian.org."""
    if mirror := os.environ.get("KUBENOVA_DEBIAN_MIRROR"):
        return mirror
    apt = Path("/etc/apt")
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]
    sources = {str(p): p.read_text(errors="replace") for p in files if p.is_file()}
    return mirror_from_sources(sources) or DEFAULT_MIRROR


def base_key() -> str:
    """16 hex digits over what defines the stand-in base: suite, variant, packages, the
    trimming, the recipe version and the CA bundle put into it. Not the mirror: every
    mirror serves the same packages."""
    digest = hashlib.sha256()
    recipe = {
        "suite": SUITE,
        "variant": "minbase",
        "packages": BASE_PACKAGES,
        "trimmed": TRIMMED,
        "recipe": RECIPE_VERSION,
    }
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    if HOST_CA_BUNDLE.is_file():
        digest.update(HOST_CA_BUNDLE.read_bytes())
    return digest.hexdigest()[:16]


def base_image_name() -> str:
    return f"{BASE_REPOSITORY}:{base_key()}"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _elapsed(started: float) -> str:
    seconds = int(time.monotonic() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _run_logged(cmd: list[str], log_path: Path, what: str) -> float:
    """Run `cmd` with its output in `log_path`, printing a line every 30 s; the seconds
    it took, or BuildError with the log's tail."""
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO
        )
        try:
            while True:
                try:
                    code = proc.wait(timeout=_HEARTBEAT)
                    break
                except subprocess.TimeoutExpired:
                    _say(f"{what}: still running ({_elapsed(started)}; log {log_path})")
        except BaseException:  # Ctrl-C: do not leave the build running
            proc.kill()
            proc.wait()
            raise
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(f"{what} failed (exit {code}); log {log_path}:\n{tail}")
    return time.monotonic() - started


def _podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*PODMAN, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise BuildError(f"podman {' '.join(args)}: {result.stderr.strip()}")
    return result


def image_exists(name: str) -> bool:
    return _podman("image", "exists", name, check=False).returncode == 0


def base_tarball() -> Path:
    """The stand-in base's root filesystem (a .tar.gz under $KUBENOVA_CACHE/images),
    made with debootstrap first if needed (as root: it chroots and installs packages).
    File-locked, so parallel builds wait for one another."""
    directory = cache_dir() / "images"
    tarball = directory / f"python-base-{base_key()}.tar.gz"
    if tarball.is_file():
        return tarball
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "python-base.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.is_file():
            return tarball
        if os.geteuid() != 0:
            raise BuildError(
                "building the stand-in Python base needs root (debootstrap chroots and "
                f"installs packages): run `python -m kubenova_e2e build` as root once; "
                f"it is then cached as {tarball}"
            )
        if shutil.which("debootstrap") is None:
            raise BuildError("debootstrap is not installed (apt-get install debootstrap)")
        mirror = debian_mirror()
        _say(f"building the stand-in Python 3.11 base with debootstrap from {mirror} (once)")
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="python-base-", dir=directory))
        try:
            rootfs = work / "rootfs"
            _run_logged(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    SUITE,
                    str(rootfs),
                    mirror,
                ],
                directory / "debootstrap.log",
                "debootstrap",
            )
            for path in TRIMMED:
                for child in (rootfs / path).glob("*"):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            if HOST_CA_BUNDLE.is_file():
                shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
            partial = work / "rootfs.tar.gz"
            subprocess.run(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-czf", str(partial), "."],
                check=True,
            )
            partial.rename(tarball)  # atomic: a killed build leaves no half tarball
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _say(f"built the stand-in base in {_elapsed(started)}: {tarball}")
    return tarball


def ensure_base_image() -> str:
    """The stand-in base's name in podman's storage, imported from the cached tarball
    (built first if needed)."""
    name = base_image_name()
    if image_exists(name):
        return name
    tarball = base_tarball()
    _podman(
        "import",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        'CMD ["python3"]',
        str(tarball),
        name,
        timeout=600,
    )
    return name


def build_operator_image(tag: str = OPERATOR_IMAGE) -> tuple[str, float]:
    """`podman build` of the repository's Dockerfile (its runtime target) on the
    stand-in base; layer-cached, so only what changed is rebuilt. The image's ID (not
    the tag, which a build from another checkout may move) and the seconds it took.
    `--network host`: the build's pip reaches PyPI as the machine does (rootful
    podman's bridge network may not exist in a sandbox)."""
    base = ensure_base_image()
    directory = cache_dir() / "images"
    directory.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="operator-build-", dir=directory))
    log_path, id_file = work / "build.log", work / "image-id"
    seconds = _run_logged(
        [
            *PODMAN,
            "build",
            "--iidfile",
            str(id_file),
            "--network",
            "host",
            "--layers",
            "--target",
            "runtime",
            "--build-arg",
            f"PYTHON_IMAGE={base}",
            "--tag",
            tag,
            "--file",
            str(REPO / "Dockerfile"),
            str(REPO),
        ],
        log_path,
        f"podman build of {tag}",
    )
    image_id = id_file.read_text().strip()
    shutil.rmtree(work, ignore_errors=True)  # kept (with its log) only when it failed
    return image_id, seconds


def image_size(tag: str) -> int:
    """The image's size in bytes, as `podman images` reports it (uncompressed)."""
    return int(_podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def image_config(tag: str) -> dict[str, object]:
    """The image's config as podman records it (User, Entrypoint, Env, ...)."""
    result = _podman("image", "inspect", "--format", "{{json .Config}}", tag)
    return dict(json.loads(result.stdout))


class OperatorContainer:
    """The operator image run as a pod runs it: the host's network (the API server is on
    loopback), the in-cluster environment (KUBERNETES_SERVICE_HOST/PORT and the
    ServiceAccount's token, CA and namespace mounted where the kubelet mounts them), a
    read-only root filesystem with only /tmp writable (the Deployment's emptyDir), no
    capabilities, no privilege escalation, and the image's own (non-root) user."""

    def __init__(
        self,
        image: str,
        *,
        server: str,
        token: str,
        ca_file: Path,
        namespace: str,
        workdir: Path,
        ports: dict[str, int],
        **env: str,
    ) -> None:
        self.image = image
        self.name = f"kubenova-e2e-{os.getpid()}-{ports['health']}"
        self.ports = ports
        host, _, port = server.removeprefix("https://").rpartition(":")
        self.secrets = workdir / "serviceaccount"
        self.secrets.mkdir(mode=0o755, parents=True, exist_ok=True)
        for name, content in (
            ("token", token.encode()),
            ("ca.crt", ca_file.read_bytes()),
            ("namespace", namespace.encode()),
        ):
            (self.secrets / name).write_bytes(content)
            (self.secrets / name).chmod(0o644)  # the image's user is not the file's owner
        self.env = {
            "KUBERNETES_SERVICE_HOST": host.strip("[]"),
            "KUBERNETES_SERVICE_PORT": port,
            "KUBENOVA_NAMESPACE": namespace,
            "KUBENOVA_POD_NAME": self.name,
            "KUBENOVA_BIND_ADDRESS": "127.0.0.1",
            "KUBENOVA_METRICS_PORT": str(ports["metrics"]),
            "KUBENOVA_HEALTH_PORT": str(ports["health"]),
            "KUBENOVA_SHIM_PORT": str(ports["shim"]),
            "KUBENOVA_SHIM_SERVICE_PORT": str(ports["shim"]),
            **env,
        }

    def start(self) -> None:
        args = [
            "run",
            "--detach",
            "--name",
            self.name,
            "--network",
            "host",
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs",
            "/tmp:rw,nosuid,nodev,mode=1777,size=64m",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--stop-timeout",
            str(GRACE_SECONDS),
            "--volume",
            f"{self.secrets}:{SERVICE_ACCOUNT_MOUNT}:ro",
        ]
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        _podman(*args, self.image)

    def inspect(self) -> dict[str, object]:
        result = _podman("container", "inspect", self.name)
        return dict(json.loads(result.stdout)[0])

    def process_status(self) -> dict[str, str]:
        """/proc/<pid>/status of the container's main process, seen from the host
        (field -> value: Uid, Gid, CapEff, ...)."""
        pid = _podman("container", "inspect", "--format", "{{.State.Pid}}", self.name)
        text = Path(f"/proc/{pid.stdout.strip()}/status").read_text()
        return {
            key: value.strip()
            for key, _, value in (line.partition(":") for line in text.splitlines())
        }

    def running(self) -> bool:
        result = _podman(
            "container", "inspect", "--format", "{{.State.Running}}", self.name, check=False
        )
        return result.stdout.strip() == "true"

    def probe(self, path: str) -> int | None:
        """The HTTP status of the health server's `path`, None when it does not answer."""
        url = f"http://127.0.0.1:{self.ports['health']}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None

    def terminate(self) -> tuple[int, float]:
        """SIGTERM, as the kubelet sends it, and wait up to the grace period: the exit
        code and the seconds it took (the kubelet would SIGKILL after GRACE_SECONDS)."""
        started = time.monotonic()
        _podman("kill", "--signal", "TERM", self.name)
        result = _podman("wait", self.name, timeout=GRACE_SECONDS + 30)
        return int(result.stdout.strip().splitlines()[-1]), time.monotonic() - started

    def logs(self, lines: int | None = 80) -> str:
        """The last `lines` of its output (stdout and stderr), all of it with None."""
        tail = -1 if lines is None else lines
        result = _podman("logs", "--tail", str(tail), self.name, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _podman("rm", "--force", "--time", "0", self.name, check=False)


def build_step() -> None:
    """Part of `python -m kubenova_e2e build`: the stand-in base and the operator image,
    so the image test only rebuilds what the source changed. Without podman, says so
    (the image test is then skipped for the same reason)."""
    reason = cannot_build()
    if reason is not None:
        _say(f"not building the operator image: {reason}")
        return
    image_id, seconds = build_operator_image()
    _say(f"built {OPERATOR_IMAGE} in {seconds:.0f}s ({image_size(image_id) / 1e6:.0f} MB)")
    print(f"{OPERATOR_IMAGE} {image_id}")
