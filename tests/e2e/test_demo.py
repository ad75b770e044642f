"""The README's run command works and shows what it promises."""

from __future__ import annotations

import os
import subprocess
import sys


def test_readme_run_command_builds_the_examples() -> None:
    # `make run` is `python -m kubenova_e2e demo`; --exit stops after the results
    # instead of waiting for Ctrl-C.
    result = subprocess.run(
        [sys.executable, "-m", "kubenova_e2e", "demo", "--exit"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KUBENOVA_KUBECONFIG": ""},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    tenant_row = next(line for line in out.splitlines() if line.startswith("acme "))
    assert tenant_row.split()[:5] == ["acme", "True", "Ready", "5", "2"]
    for namespace in ("acme-owner", "acme-apps", "acme-shop-dev", "acme-shop-prod", "acme-api"):
        assert namespace in out
    assert "Ready=True (Reconciled)" in out
    # The example Application, run by the real vela-core, followed by Kubenova.
    assert (
        "acme-shop-dev/storefront: running, healthy=true, revision storefront-v1, "
        "pods: app.oam.dev/name=storefront"
    ) in out
    shop_row = next(line for line in out.splitlines() if line.startswith("acme-owner   shop "))
    assert shop_row.split()[3:6] == ["True", "1", "1"], shop_row
    # The kubectl kubenova plugin, found by kubectl on the PATH.
    plugin = out[out.index("$ kubectl kubenova tenants") :]
    assert "tenant acme (ACME web team)  Ready" in plugin
    assert "env dev namespace acme-shop-dev" in plugin
    assert "app storefront  running  rev storefront-v1  healthy" in plugin
    assert "$ kubectl kubenova usage" in plugin and "requests.cpu" in plugin
    # Capsule and capsule-proxy (built by `make controlplane`; the proxy where its source
    # is on the machine): acme's owner kubeconfig, delivered by Kubenova with the proxy
    # as its server, lists exactly acme's namespaces.
    assert "Capsule Tenant acme: Active" in out, out[-3000:]
    if "skipping capsule-proxy: capsule-proxy needs its source" not in out:
        listing = out[out.index("acme's owner kubeconfig (delivered by Kubenova)") :]
        listing = listing[listing.index("get namespaces\n") :].split("\n\n")[0]
        rows = sorted(line.split()[0] for line in listing.splitlines()[2:])
        assert rows == sorted(
            ["acme-owner", "acme-apps", "acme-shop-dev", "acme-shop-prod", "acme-api"]
        ), listing
        assert "# server: https://127.0.0.1:" in out
        print(next(line for line in out.splitlines() if "Capsule and capsule-proxy added" in line))
    assert "==> stopping" in out
