"""Kubenova on a cluster, for the demo and the tests: the platform objects
(`manifests/` minus the Deployment) and the operator as a local process."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from .build import REPO
from .controlplane import apply_manifest, free_port, kubectl, stop_process

OPERATOR_NAMESPACE = "kubenova-system"
POLICIES = REPO / "manifests" / "policies"
FAIRNESS = REPO / "manifests" / "fairness"
# Who the admission policies in manifests/policies/ let through: the operator's
# ServiceAccount, as it runs in a cluster.
OPERATOR_USERNAME = f"system:serviceaccount:{OPERATOR_NAMESPACE}:kubenova-operator"


def kubeconfig_username(kubeconfig: Path) -> str:
    """The user a kubeconfig authenticates as (a SelfSubjectReview)."""
    result = kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=kubeconfig
    )
    return result.stdout.strip()


def install_policies(kubeconfig: Path) -> None:
    """The ValidatingAdmissionPolicies of manifests/policies/. Here the operator is a
    local process using `kubeconfig`, not the in-cluster ServiceAccount: the policies
    exempt that identity instead (the tests act as other users)."""
    operator = kubeconfig_username(kubeconfig)
    for path in sorted(POLICIES.glob("*.yaml")):
        text = path.read_text()
        assert OPERATOR_USERNAME in text, f"{path.name} does not name the operator"
        apply_manifest(text.replace(OPERATOR_USERNAME, operator), kubeconfig)


def install_platform(kubeconfig: Path) -> None:
    """CRDs, the product ClusterRoles, the admission policies, the API Priority and
    Fairness objects and the operator's namespace (what `kubectl apply -k manifests/`
    installs, less the in-cluster Deployment)."""
    kubectl("apply", "--server-side", "-k", str(REPO / "crds"), kubeconfig=kubeconfig)
    kubectl(
        "apply",
        "--server-side",
        "-f",
        str(REPO / "manifests" / "rbac" / "roles.yaml"),
        kubeconfig=kubeconfig,
    )
    install_policies(kubeconfig)
    # API Priority and Fairness: the tenants' priority level and the operator's
    # FlowSchema (for the in-cluster ServiceAccount; the operator here authenticates as
    # the admin, whose requests are exempt anyway).
    kubectl("apply", "--server-side", "-f", str(FAIRNESS), kubeconfig=kubeconfig)
    kubectl("create", "namespace", OPERATOR_NAMESPACE, kubeconfig=kubeconfig, check=False)
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/tenants.kubenova.io",
        "crd/projects.kubenova.io",
        kubeconfig=kubeconfig,
    )


def route_shim_to_localhost(kubeconfig: Path, port: int) -> None:
    """The APIService's Service, for an operator running on this machine: Endpoints
    refuse loopback addresses, but an ExternalName Service to localhost, with the
    APIService port set to the shim's, is routed by the aggregator (kwokctl's method)."""
    service = f"""apiVersion: v1
kind: Service
metadata:
  name: kubenova-api
  namespace: {OPERATOR_NAMESPACE}
spec:
  type: ExternalName
  externalName: localhost
  ports:
    - name: https
      port: {port}
"""
    apply_manifest(service, kubeconfig)


class OperatorProcess:
    """The operator as it runs in production: its own process, its own settings."""

    def __init__(self, kubeconfig: Path, workdir: Path, **env: str) -> None:
        self.kubeconfig = kubeconfig
        self.log = workdir / "operator.log"
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.shim_port = free_port()
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "KUBENOVA_LOG_FORMAT": "text",
            "KUBENOVA_NAMESPACE": OPERATOR_NAMESPACE,
            "KUBENOVA_LOG_LEVEL": "INFO",
            "KUBENOVA_METRICS_PORT": str(self.metrics_port),
            "KUBENOVA_HEALTH_PORT": str(self.health_port),
            "KUBENOVA_BIND_ADDRESS": "127.0.0.1",
            "KUBENOVA_RESYNC_SECONDS": "5",
            "KUBENOVA_RELIST_SECONDS": "5",
            "KUBENOVA_CREDENTIAL_CHECK_SECONDS": "5",
            "KUBENOVA_SHIM_PORT": str(self.shim_port),
            "KUBENOVA_SHIM_REFRESH_SECONDS": "3",
            "KUBENOVA_SHIM_SERVICE_PORT": str(self.shim_port),
            # One process: when it stops, the group leaves discovery cleanly.
            "KUBENOVA_SHIM_UNREGISTER_ON_EXIT": "true",
            "KUBENOVA_POD_NAME": "e2e-operator",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        route_shim_to_localhost(self.kubeconfig, self.shim_port)
        logfile = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubenova_operator"],
            env=self.env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logfile.close()

    def stop(self, kill: bool = False) -> None:
        stop_process(self.proc, kill=kill)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as response:
            return str(response.read().decode())

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
