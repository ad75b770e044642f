"""What e2e tests use to talk to the real API server: clients, waits, kubectl.

Waits are watches or polls with a deadline, never fixed sleeps: a test takes as long as
the behaviour takes, and fails with what it last saw.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubenova_e2e.platform import OperatorProcess
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from typer.testing import CliRunner, Result

from kubenova_operator.cli import app as cli_app

GROUP, VERSION = "kubenova.io", "v1alpha1"
T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    kubeconfig: Path
    kubectl_binary: list[str]

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [*self.kubectl_binary, f"--kubeconfig={self.kubeconfig}"]
        result = subprocess.run(
            [*cmd, *args], capture_output=True, text=True, input=input, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def token_kubectl(
        self, token: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """kubectl with only a bearer token (no admin certificate)."""
        server = self.server()
        ca = self.ca_file()
        return subprocess.run(
            [
                *self.kubectl_binary,
                f"--server={server}",
                f"--certificate-authority={ca}",
                f"--token={token}",
                "--kubeconfig=/dev/null",
                *args,
            ],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
            check=False,
        )

    def server(self) -> str:
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        return str(cfg["clusters"][0]["cluster"]["server"])

    def ca_file(self) -> Path:
        path = self.kubeconfig.parent / "kubeconfig-ca.crt"
        if not path.exists():
            cfg = yaml.safe_load(self.kubeconfig.read_text())
            path.write_bytes(
                base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"])
            )
        return path

    def apply(self, manifest: dict[str, Any] | str) -> None:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        self.kubectl("apply", "--server-side", "--field-manager=e2e", "-f", "-", input=text)

    def create_token(self, sa: str, namespace: str, seconds: int = 600) -> str:
        out = self.kubectl("create", "token", sa, "-n", namespace, f"--duration={seconds}s")
        return out.stdout.strip()


async def api_client(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


async def token_api_client(cluster: Cluster, token: str) -> client.ApiClient:
    """An API client with nothing but a bearer token (a tenant owner's, say)."""
    configuration = client.Configuration(
        host=cluster.server(),
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
    )
    configuration.ssl_ca_cert = str(cluster.ca_file())
    return client.ApiClient(configuration)


async def impersonating_client(kubeconfig: Path, user: str, group: str) -> client.ApiClient:
    """The admin's client acting as `user` in `group` (Impersonate-* headers), for
    requests that must not come from the identity the local operator runs as."""
    api = await api_client(kubeconfig)
    api.set_default_header("Impersonate-User", user)
    api.set_default_header("Impersonate-Group", group)
    return api


async def merge_patch(
    api: client.ApiClient,
    plural: str,
    name: str,
    patch: dict[str, Any],
    namespace: str | None = None,
) -> None:
    """A JSON merge patch of a kubenova.io object (the generated client defaults to
    JSON patch)."""
    custom = client.CustomObjectsApi(api)
    merge = "application/merge-patch+json"
    if namespace:
        await custom.patch_namespaced_custom_object(  # type: ignore[call-arg]
            GROUP, VERSION, namespace, plural, name, patch, _content_type=merge
        )
    else:
        await custom.patch_cluster_custom_object(  # type: ignore[call-arg]
            GROUP, VERSION, plural, name, patch, _content_type=merge
        )


def api_message(exc: ApiException) -> str:
    """The message of the metav1.Status an API error carries."""
    body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body)
    return str(json.loads(body)["message"])


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    deadline: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns a truthy value or raises nothing falsy, with a
    deadline; fail with the last value or error seen."""
    end = time.monotonic() + deadline
    last: Any = None
    while True:
        try:
            value = await probe()
            if value:
                return value
            last = value
        except (AssertionError, ApiException) as exc:
            last = exc
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


async def watch_until(
    api: client.ApiClient,
    plural: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    namespace: str | None = None,
    deadline: float = 60.0,
) -> dict[str, Any]:
    """Watch one kubenova.io object until `predicate(obj)` holds (checked on the current
    state first, then on every change)."""
    custom = client.CustomObjectsApi(api)
    last: dict[str, Any] | None = None
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if namespace:
            listing = await custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, field_selector=f"metadata.name={name}"
            )
        else:
            listing = await custom.list_cluster_custom_object(
                GROUP, VERSION, plural, field_selector=f"metadata.name={name}"
            )
        for item in listing["items"]:
            last = item
            if predicate(item):
                return dict(item)
        rv = listing["metadata"]["resourceVersion"]
        stream = watch.Watch()
        remaining = max(1, int(end - time.monotonic()))
        kwargs: dict[str, Any] = {
            "field_selector": f"metadata.name={name}",
            "resource_version": rv,
            "timeout_seconds": remaining,
        }
        func = (
            custom.list_namespaced_custom_object if namespace else custom.list_cluster_custom_object
        )
        args = (GROUP, VERSION, namespace, plural) if namespace else (GROUP, VERSION, plural)
        try:
            async with stream.stream(func, *args, **kwargs) as events:
                async for event in events:
                    obj = event["object"]
                    last = obj
                    if event["type"] != "DELETED" and predicate(obj):
                        return dict(obj)
        except ApiException as exc:
            if exc.status != 410:
                raise
    raise AssertionError(
        f"{plural}/{name}: timed out after {deadline}s; last seen: "
        f"{json.dumps((last or {}).get('status'), default=str)[:2000]}"
    )


async def until_deleted(
    api: client.ApiClient,
    plural: str,
    name: str,
    namespace: str | None = None,
    deadline: float = 30,
) -> None:
    """Wait until a kubenova.io object is gone (its finalizer released)."""
    custom = client.CustomObjectsApi(api)

    async def gone() -> bool:
        try:
            if namespace:
                await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            else:
                await custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(gone, deadline=deadline, what=f"{plural}/{name} to be deleted")


def project_body(tenant_name: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Project",
        "metadata": {"name": name, "namespace": f"{tenant_name}-owner"},
        "spec": spec,
    }


def tenant_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    }


def kcr_body(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KubeConfigRequest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


async def create_kcr(
    api: client.ApiClient, name: str, namespace: str, **spec: Any
) -> dict[str, Any]:
    """Create a KubeConfigRequest as `api`'s identity; the created object."""
    created = await client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "kubeconfigrequests", kcr_body(name, namespace, **spec)
    )
    return dict(created)


def kubectl_with(
    cluster: Cluster, kubeconfig: str, tmp: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl with nothing but `kubeconfig` (an issued one's text)."""
    path = tmp / f"kc-{time.monotonic_ns()}"
    path.write_text(kubeconfig)
    return subprocess.run(
        [*cluster.kubectl_binary, f"--kubeconfig={path}", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


async def until_healthy(operator: OperatorProcess, deadline: float = 60) -> None:
    """Wait for the operator's /healthz; fail at once, with its log, if it exits."""

    async def healthy() -> bool:
        assert operator.alive(), f"operator exited:\n{operator.tail()}"
        return operator.healthy()

    await eventually(healthy, deadline=deadline, what="operator /healthz")


async def create_tenants(api: client.ApiClient, specs: dict[str, dict[str, Any]]) -> None:
    """Create Tenants and wait until each is Ready at its generation."""
    custom = client.CustomObjectsApi(api)
    for name, spec in specs.items():
        await custom.create_cluster_custom_object(
            GROUP, VERSION, "tenants", tenant_body(name, **spec)
        )
    for name in specs:
        await watch_until(api, "tenants", name, ready_at_generation)


def must_condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition, failing the test when the object does not have it."""
    found = condition(obj, type_)
    assert found is not None, f"no {type_} condition in {obj.get('status')}"
    return found


def ready_at_generation(obj: dict[str, Any]) -> bool:
    cond = condition(obj, "Ready")
    return bool(
        cond
        and cond["status"] == "True"
        and cond.get("observedGeneration") == obj["metadata"]["generation"]
        and obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"]
    )


def token_kubeconfig(cluster: Cluster, token: str, namespace: str, path: Path) -> Path:
    """A kubeconfig file holding nothing but a bearer token (a tenant's seat)."""
    user = {"name": "me", "user": {"token": token}}
    server = {"server": cluster.server(), "certificate-authority": str(cluster.ca_file())}
    context = {"cluster": "e2e", "user": "me", "namespace": namespace}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "e2e", "cluster": server}],
                "users": [user],
                "contexts": [{"name": "me", "context": context}],
                "current-context": "me",
            }
        )
    )
    path.chmod(0o600)
    return path


def plugin(kubeconfig: Path, *args: str, home: Path | None = None) -> Result:
    """`kubectl kubenova ARGS` in-process (Typer's CliRunner) with that kubeconfig;
    `home` is XDG_CONFIG_HOME, where it keeps its key."""
    env = {"KUBECONFIG": str(kubeconfig), "COLUMNS": "200"}
    if home is not None:
        env["XDG_CONFIG_HOME"] = str(home)
    return CliRunner().invoke(cli_app, list(args), env=env)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series == name and not want:
            return float(value)
        if "{" in series and series.split("{", 1)[0] == name:
            got = dict(
                part.split("=", 1)
                for part in series.split("{", 1)[1].rstrip("}").split(",")
                if part
            )
            if all(got.get(k) == f'"{v}"' for k, v in labels.items()):
                total += float(value)
    return total
