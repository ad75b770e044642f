"""Build the Go peers once per machine, cached by the hash of their sources.

The cache lives outside the checkout ($KUBENOVA_CACHE, default ~/.cache/kubenova):
CI clones afresh each time, and a binary keyed by go.mod/go.sum/*.go is rebuilt only
when those change. A cold build prints progress, never silence.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTROLPLANE_MODULE = REPO / "e2e" / "controlplane"


def cache_dir() -> Path:
    return Path(os.environ.get("KUBENOVA_CACHE", Path.home() / ".cache" / "kubenova"))


def source_key(module_dir: Path) -> str:
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


def ensure_binary(module_dir: Path, name: str) -> Path:
    """The path of `name` built from `module_dir`, building it first if needed."""
    bin_dir = cache_dir() / "bin" / f"{name}-{source_key(module_dir)}"
    binary = bin_dir / name
    if os.access(binary, os.X_OK):
        return binary
    bin_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir() / "bin" / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it
        if os.access(binary, os.X_OK):
            return binary
        _build(module_dir, name, binary)
    return binary


def _build(module_dir: Path, name: str, binary: Path) -> None:
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    tmp = binary.with_name(f".{name}.partial")
    log_path = binary.parent / "build.log"
    ldflags = " ".join(["-s", "-w", *_version_ldflags(module_dir)])
    cmd = ["go", "build", "-trimpath", f"-ldflags={ldflags}", "-v", "-o", str(tmp), "."]
    print(
        f"building {name} from {module_dir.relative_to(REPO)} (first time on this "
        "machine: a few minutes)",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    packages = 0
    last_report = 0.0
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=module_dir, env=env, stdout=log, stderr=subprocess.PIPE, text=True
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            log.write(line)
            if not line.startswith(("go: ", "#")):
                packages += 1
            now = time.monotonic()
            if now - last_report >= 5:
                last_report = now
                print(
                    f"  building {name}: {packages} packages compiled "
                    f"({int(now - started) // 60}m{int(now - started) % 60:02d}s)",
                    file=sys.stderr,
                    flush=True,
                )
        code = proc.wait()
    if code != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-30:])
        raise RuntimeError(f"go build of {name} failed (exit {code}); log {log_path}:\n{tail}")
    tmp.rename(binary)  # atomic: a killed build never leaves a broken binary behind
    print(
        f"built {name} in {time.monotonic() - started:.0f}s -> {binary}",
        file=sys.stderr,
        flush=True,
    )


def controlplane_binary() -> Path:
    return ensure_binary(CONTROLPLANE_MODULE, "k8s")
