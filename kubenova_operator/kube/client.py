"""The operator's connection to the API server (kubernetes-asyncio's dynamic client).

Discovery is what lets Kubenova notice Capsule or KubeVela being installed while it
runs: an unknown kind triggers one re-discovery (rate-limited), never a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import kopf
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient
from kubernetes_asyncio.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from kubernetes_asyncio.dynamic.resource import Resource

from ..resources.labels import FIELD_MANAGER

REDISCOVERY_INTERVAL = 10.0
# How long a has_kind answer is reused: the passes of a burst (a VelaSync or CapsuleSync
# pass asks whether its peer is installed) share one discovery GET, and a peer installed
# meanwhile is still seen within seconds.
KIND_ANSWER_SECONDS = 5.0
# Where Kubernetes mounts a pod's ServiceAccount token, CA bundle and namespace.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def _as_dict(_client: Any, data: Any) -> Any:
    """The dynamic client's response serializer: the parsed JSON as it is. Its default
    wraps every response in a ResourceInstance (a ResourceField per nested mapping),
    which checked() then turned back into a dict: a fifth of the operator's CPU while
    it converges (py-spy, docs/benchmarks.md)."""
    return data


def checked(result: Any) -> dict[str, Any]:
    """The object the API server answered with, or its refusal raised.

    kubernetes-asyncio's dynamic client reads responses without checking their status
    (it requests them with `_preload_content=False`), so a refused write comes back as
    a `Status` object instead of an exception. Unchecked, a refusal looked like success
    (and crashed whoever read the "object's" name). Every call goes through here.
    """
    data = dict(result.to_dict()) if hasattr(result, "to_dict") else dict(result)
    if data.get("kind") == "Status" and data.get("status") == "Failure":
        error = ApiException(status=int(data.get("code") or 0), reason=str(data.get("reason")))
        error.body = json.dumps(data).encode()
        raise error
    return data


def in_cluster(environ: Mapping[str, str] = os.environ) -> bool:
    """In a pod (the API server's address in the environment) and no kubeconfig asked
    for instead."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and not environ.get("KUBECONFIG")


def in_cluster_server(environ: Mapping[str, str] = os.environ) -> str:
    """The API server as a pod reaches it: KUBERNETES_SERVICE_HOST/PORT, as client-go
    and kubernetes-asyncio read them (not the `kubernetes.default.svc` name, which only
    cluster DNS resolves: a hostNetwork pod or a container on a host network has none)."""
    host = environ["KUBERNETES_SERVICE_HOST"]
    port = environ.get("KUBERNETES_SERVICE_PORT") or "443"
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def service_account_login(
    directory: Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] = os.environ
) -> kopf.ConnectionInfo:
    """kopf's credentials in a pod: the mounted ServiceAccount token, CA and namespace,
    and the server the environment names. The token is read on every call: kopf calls
    the login handler again when the API server answers 401, and the kubelet rewrites a
    projected token before it expires, so a rotated token is picked up."""
    token = (directory / "token").read_text().strip()
    namespace_file = directory / "namespace"
    ca_file = directory / "ca.crt"
    return kopf.ConnectionInfo(
        server=in_cluster_server(environ),
        token=token,
        scheme="Bearer",
        ca_path=str(ca_file) if ca_file.exists() else None,
        default_namespace=(namespace_file.read_text().strip() if namespace_file.exists() else None),
    )


async def load_configuration() -> client.Configuration:
    """In-cluster credentials, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = client.Configuration()
    if in_cluster():
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    else:
        await config.load_kube_config(client_configuration=configuration)
    return configuration


def without_environment(api: client.ApiClient) -> None:
    """kubernetes-asyncio opens its session with aiohttp's trust_env=True: every
    request then looks for a ~/.netrc password and an environment proxy for the API
    server, each in a thread (a seventh of the operator's CPU while it converged,
    docs/benchmarks.md). The session is replaced by one that does neither, on the same
    connection pool; this is how kopf's own session (its watches) is set up by default
    (settings.networking.trust_env is False), so both reach the API server the same
    way: directly, or through the kubeconfig's proxy-url."""
    rest = api.rest_client
    old = rest.pool_manager
    connector = old.connector
    old.detach()  # closed without closing the connection pool it hands over
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        # kubernetes-asyncio's own: room for large objects in one read.
        read_bufsize=2**21,
    )


async def api_client() -> client.ApiClient:
    """The operator's API client (its passes' and its leader election's): in-cluster
    credentials or the kubeconfig, without the environment lookups."""
    api = client.ApiClient(await load_configuration())
    without_environment(api)
    return api


class Kube:
    """A thin, typed face over the dynamic client for what controllers need."""

    def __init__(self, api: client.ApiClient, dynamic: DynamicClient) -> None:
        self.api = api
        self.dynamic = dynamic
        self._last_rediscovery = 0.0
        self._discovery_lock = asyncio.Lock()
        self._kinds_served: dict[tuple[str, str], tuple[float, bool]] = {}

    @classmethod
    async def connect(cls) -> Kube:
        api = await api_client()
        # A private discovery cache: the default is shared by every process of the
        # machine that talks to the same URL.
        folder = tempfile.mkdtemp(prefix="kubenova-discovery-")
        try:
            dynamic = await DynamicClient(api, cache_file=os.path.join(folder, "cache.json"))
        except BaseException:
            # Its discovery failed (the caller retries with a new client): close this
            # one, and leave no discovery cache behind per try.
            await api.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(api, dynamic)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    async def close(self) -> None:
        await self.api.close()

    async def resource(self, api_version: str, kind: str) -> Resource:
        try:
            return await self.dynamic.resources.get(api_version=api_version, kind=kind)
        except (ResourceNotFoundError, KeyError):
            # Not found, or (KeyError) the cache caught mid-update while a CRD was
            # being established: re-discover, one at a time, because the discoverer
            # rebuilds its cache in place and a concurrent lookup would see it
            # half-built.
            async with self._discovery_lock:
                if time.monotonic() - self._last_rediscovery >= REDISCOVERY_INTERVAL:
                    self._last_rediscovery = time.monotonic()
                    await self.dynamic.resources.invalidate_cache()
            return await self.dynamic.resources.get(api_version=api_version, kind=kind)

    async def has_kind(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves `kind` now: one discovery GET of its group
        version, its answer reused for KIND_ANSWER_SECONDS (so it cannot go stale for
        longer when a peer is installed or removed)."""
        key = (api_version, kind)
        asked = self._kinds_served.get(key)
        if asked is not None and time.monotonic() - asked[0] < KIND_ANSWER_SECONDS:
            return asked[1]
        group, _, version = api_version.rpartition("/")
        try:
            found = await client.CustomObjectsApi(self.api).get_api_resources(group, version)
        except ApiException as exc:
            if exc.status not in (404, 503):  # not served, or an APIService not available
                raise
            served = False
        else:
            served = any(r.kind == kind for r in found.resources or [])
        self._kinds_served[key] = (time.monotonic(), served)
        return served

    async def apply(
        self, obj: dict[str, Any], field_manager: str = FIELD_MANAGER
    ) -> dict[str, Any]:
        """Server-side apply under the `kubenova` field manager.

        force=True: Kubenova is the authority for the fields it sets (that is what
        healing means); fields it does not set stay with whoever set them.
        """
        res = await self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        result = await self.dynamic.server_side_apply(
            res,
            body=obj,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=field_manager,
            force_conflicts=True,
            serializer=_as_dict,
        )
        return checked(result)

    async def create(
        self, obj: dict[str, Any], field_manager: str = FIELD_MANAGER
    ) -> dict[str, Any]:
        """Create `obj`; fails with 409 when it exists. For what must never be taken
        over by applying onto an object of the same name (namespaces)."""
        res = await self.resource(obj["apiVersion"], obj["kind"])
        result = await self.dynamic.create(
            res,
            body=obj,
            namespace=obj["metadata"].get("namespace"),
            field_manager=field_manager,
            serializer=_as_dict,
        )
        return checked(result)

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        res = await self.resource(api_version, kind)
        try:
            return checked(
                await self.dynamic.get(res, name=name, namespace=namespace, serializer=_as_dict)
            )
        except (NotFoundError, ApiException) as exc:
            if getattr(exc, "status", 404) == 404:
                return None
            raise

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        res = await self.resource(api_version, kind)
        found = checked(
            await self.dynamic.get(
                res, namespace=namespace, label_selector=label_selector, serializer=_as_dict
            )
        )
        return [dict(item) for item in found.get("items", [])]

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> bool:
        """Delete (background propagation); False when it was already gone."""
        res = await self.resource(api_version, kind)
        try:
            checked(
                await self.dynamic.delete(
                    res,
                    name=name,
                    namespace=namespace,
                    body={"propagationPolicy": "Background"},
                    serializer=_as_dict,
                )
            )
        except (NotFoundError, ApiException) as exc:
            if getattr(exc, "status", 404) == 404:
                return False
            raise
        return True

    async def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: dict[str, Any],
    ) -> dict[str, Any]:
        res = await self.resource(api_version, kind)
        result = await self.dynamic.patch(
            res,
            body=patch,
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
            # Without it the API server records the client library's default name
            # (OpenAPI-Generator) in managedFields: `kubenova` says who wrote what.
            field_manager=FIELD_MANAGER,
            serializer=_as_dict,
        )
        return checked(result)

    async def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        status: dict[str, Any],
    ) -> dict[str, Any] | None:
        """A merge patch of the status subresource; None when the object is gone (it
        was deleted while its pass ran: its DELETED event says the rest). Conditions
        are a list and replaced whole, which is what we want: the caller computed the
        complete list."""
        res = await self.resource(api_version, kind)
        result = await self.dynamic.patch(
            res.subresources["status"],
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
            # Without it the API server records the client library's default name
            # (OpenAPI-Generator) in managedFields: `kubenova` says who wrote what.
            field_manager=FIELD_MANAGER,
            serializer=_as_dict,
        )
        try:
            return checked(result)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
