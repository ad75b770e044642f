"""`make bench` in miniature (N = 10, a few samples, a short idle window), so the
benchmark code cannot rot: no targets asserted, only that every number it promises is
there, sane and consistent. Its own process, control plane and operator, as `make bench`
runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

N, SAMPLES, IDLE = 10, 3, 10


def test_bench_smoke(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubenova_e2e",
            "bench",
            "--n",
            str(N),
            "--samples",
            str(SAMPLES),
            "--idle-seconds",
            str(IDLE),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"N={N}: kubenova: converged" in run.stdout  # progress is printed

    data = json.loads((tmp_path / "benchmarks.json").read_text())
    assert data["machine"]["cores"] >= 1 and data["machine"]["commit"]
    [r] = data["results"]
    assert r["n"] == N
    assert r["baseline_seconds"] > 0 and r["kubenova_seconds"] > 0
    assert r["ratio"] == round(r["kubenova_seconds"] / r["baseline_seconds"], 2)
    # The baseline wrote exactly what the operator built: 6 namespaces a tenant (owner,
    # apps, 2 projects x 2 environments), and every other kind the same number.
    assert r["baseline_objects"]["Namespace"] == 6 * N
    assert r["kubenova_objects"] == r["baseline_objects"]
    for latency in ("tenant_ready", "kcr_secret", "drift_heal"):
        s = r[latency]
        assert s["n"] == SAMPLES and 0 < s["p50"] <= s["p99"] <= s["max"] < 60, (latency, s)
    assert r["idle_seconds"] == IDLE
    # The operator is seen in the audit log: it holds its Lease during the window.
    assert r["idle_operator_requests"]["by_request"].get("update leases", 0) >= 1
    assert r["idle_writes_per_minute"] >= 0
    for when in ("after_convergence", "after_idle"):
        assert 20 < r[when]["rss_mb"] < 4000 and r[when]["cpu_seconds"] > 0
    assert r["after_idle"]["cpu_seconds"] >= r["after_convergence"]["cpu_seconds"]

    doc = (tmp_path / "benchmarks.md").read_text()
    assert f"| {N} | {r['baseline_seconds']:.1f} | {r['kubenova_seconds']:.1f} |" in doc
    for png in ("bench-convergence.png", "bench-rss.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
