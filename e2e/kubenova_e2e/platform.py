"""Kubenova on a cluster, for the demo and the tests: the platform objects
(`manifests/` minus the Deployment) and the operator as a local process holding its
ServiceAccount's token, so it has exactly the permissions it has in a pod."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from .build import REPO
from .controlplane import (
    ControlPlaneError,
    apply_manifest,
    free_port,
    kubectl,
    stop_process,
    wait_established,
)

OPERATOR_NAMESPACE = "kubenova-system"
OPERATOR_SERVICE_ACCOUNT = "kubenova-operator"
MANIFESTS = REPO / "manifests"
# Who the admission policies, the FlowSchema and the audit policy in manifests/ name:
# the operator's ServiceAccount, which is who the operator is here too.
OPERATOR_USERNAME = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
# The operator's token lasts a day: longer than any test session or `make run` demo
# one would leave running (the API server's default has no maximum; a cluster with
# --service-account-max-token-expiration below it shortens it, and `operator_kubeconfig`
# refuses a token that would expire within the hour).
OPERATOR_TOKEN_SECONDS = 24 * 3600


def platform_objects(kubeconfig: Path, *, deployment: bool = False) -> list[dict[str, Any]]:
    """What `kubectl apply -k manifests/` installs; without the operator's Deployment
    unless asked (the operator runs as a local process here)."""
    rendered = kubectl("kustomize", str(MANIFESTS), kubeconfig=kubeconfig).stdout
    return [
        doc
        for doc in yaml.safe_load_all(rendered)
        if doc and (deployment or doc["kind"] != "Deployment")
    ]


def install_platform(kubeconfig: Path) -> None:
    """Everything `kubectl apply -k manifests/` installs but the in-cluster Deployment:
    the namespace, CRDs, product ClusterRoles, the operator's ServiceAccount and RBAC,
    its Services and APIService, the admission policies and the API Priority and
    Fairness objects, unchanged."""
    objects = platform_objects(kubeconfig)
    apply_manifest(yaml.safe_dump_all(objects), kubeconfig)
    crds = [
        f"crd/{o['metadata']['name']}" for o in objects if o["kind"] == "CustomResourceDefinition"
    ]
    wait_established(kubeconfig, *crds)


def operator_kubeconfig(
    admin_kubeconfig: Path,
    path: Path,
    *,
    namespace: str = OPERATOR_NAMESPACE,
    service_account: str = OPERATOR_SERVICE_ACCOUNT,
    seconds: int = OPERATOR_TOKEN_SECONDS,
) -> Path:
    """A kubeconfig for the operator's ServiceAccount (a TokenRequest token), on the
    admin kubeconfig's cluster: the identity the operator has in a pod."""
    created = kubectl(
        "create",
        "token",
        service_account,
        "-n",
        namespace,
        f"--duration={seconds}s",
        "-o",
        "json",
        kubeconfig=admin_kubeconfig,
    )
    status = json.loads(created.stdout)["status"]
    expires = datetime.fromisoformat(status["expirationTimestamp"].replace("Z", "+00:00"))
    if expires - datetime.now(UTC) < timedelta(hours=1):
        raise ControlPlaneError(
            f"the API server issued {service_account}'s token only until {expires}"
        )
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    context_name = admin["current-context"]
    context = next(c["context"] for c in admin["contexts"] if c["name"] == context_name)
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    user = f"{namespace}:{service_account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": status["token"]}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def route_shim_to_localhost(
    kubeconfig: Path, port: int, namespace: str = OPERATOR_NAMESPACE
) -> None:
    """The APIService's Service, for an operator running on this machine: Endpoints
    refuse loopback addresses, but an ExternalName Service to localhost, with the
    APIService port set to the shim's, is routed by the aggregator (kwokctl's method).
    The installed Service (a ClusterIP one, from manifests/ or the Helm chart, perhaps
    another field manager's) is replaced, not merged into."""
    current = kubectl(
        "get", "service", "kubenova-api", "-n", namespace, "-o", "jsonpath={.spec.type}",
        kubeconfig=kubeconfig, check=False,
    )  # fmt: skip
    if current.returncode == 0 and current.stdout != "ExternalName":
        kubectl("delete", "service", "kubenova-api", "-n", namespace, kubeconfig=kubeconfig)
    service = f"""apiVersion: v1
kind: Service
metadata:
  name: kubenova-api
  namespace: {namespace}
spec:
  type: ExternalName
  externalName: localhost
  ports:
    - name: https
      port: {port}
"""
    apply_manifest(service, kubeconfig)


class OperatorProcess:
    """The operator as it runs in production: its own process, its own settings, its
    own identity. `kubeconfig` is the admin's, used only for what a cluster would do
    for a pod (route its Service, mint its ServiceAccount's token); the process gets a
    kubeconfig of the ServiceAccount `service_account` in `namespace`."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        *,
        namespace: str = OPERATOR_NAMESPACE,
        service_account: str = OPERATOR_SERVICE_ACCOUNT,
        **env: str,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.service_account = service_account
        self.log = workdir / "operator.log"
        self.own_kubeconfig = workdir / "operator.kubeconfig"
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.shim_port = free_port()
        self.env = {
            **os.environ,
            "KUBECONFIG": str(self.own_kubeconfig),
            "KUBENOVA_LOG_FORMAT": "text",
            "KUBENOVA_NAMESPACE": namespace,
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
        route_shim_to_localhost(self.kubeconfig, self.shim_port, self.namespace)
        operator_kubeconfig(
            self.kubeconfig,
            self.own_kubeconfig,
            namespace=self.namespace,
            service_account=self.service_account,
        )
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

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the operator for the block, SIGCONT after it: its work in flight
        stays in flight, so a fault injected meanwhile meets it mid-build."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.proc.pid, signal.SIGCONT)

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
