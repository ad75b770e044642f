"""The aggregated API server: aiohttp over TLS, in the operator's process.

Routes (all under /apis/api.kubenova.io/v1alpha1, errors as metav1.Status):
  GET  .                                        discovery (any authenticated caller)
  GET  tenantusages[/NAME]                      usage now, JSON or a Table for kubectl
  GET  namespaces/NS/kubeconfigs/NAME           a kubeconfig minted for the caller
plus /healthz, /readyz (no authentication: the kubelet calls them) and /openapi/v2|v3.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ..api.common import API_VERSION, DNS_LABEL
from ..config import Settings
from ..credentials.errors import CredentialRefused
from ..kube.client import Kube
from ..resources import labels as L
from . import GROUP, GROUP_VERSION, VERSION
from .auth import (
    Authorizer,
    RequestHeaderConfig,
    Unauthenticated,
    User,
    authenticate,
    load_requestheader_config,
)
from .objects import (
    api_group,
    api_resource_list,
    kubeconfig_object,
    status,
    tenant_usage,
    usage_table,
    wants_table,
)
from .openapi import openapi_v2, openapi_v3_discovery, openapi_v3_group
from .registration import api_service
from .tls import ContextHolder, mounted_material, shared_material

logger = logging.getLogger(__name__)
PREFIX = f"/apis/{GROUP}/{VERSION}"
_NAME = re.compile(DNS_LABEL)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Mints a kubeconfig for a KubeConfigRequest body: (kubeconfig, expiry), or raises
# CredentialRefused. The operator injects controllers/kubeconfigrequest.py's `mint`.
Mint = Callable[[dict[str, Any]], Awaitable[tuple[str, datetime | None]]]


def error(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(status(code, reason, message), status=code)


class Shim:
    def __init__(self, kube: Kube, settings: Settings, *, mint: Mint) -> None:
        self.kube = kube
        self.settings = settings
        self.mint = mint
        self.authorizer = Authorizer(kube)
        self.tls = ContextHolder()
        self.requestheader: RequestHeaderConfig | None = None
        self.ca_pem: bytes | None = None
        self._runner: web.AppRunner | None = None
        self._refresher: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------

    def hosts(self) -> list[str]:
        svc, ns = self.settings.shim_service_name, self.settings.namespace
        return [f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local", "localhost", "127.0.0.1"]

    async def refresh(self) -> bool:
        """(Re)load the requestheader CA and the serving certificate; True if changed."""
        self.requestheader = await load_requestheader_config(self.kube)
        if self.settings.shim_cert_dir:
            material = mounted_material(Path(self.settings.shim_cert_dir))
        else:
            material = await shared_material(self.kube, self.settings.namespace, self.hosts())
        self.ca_pem = material.ca_pem
        return self.tls.update(material, self.requestheader.client_ca)

    async def start(self) -> None:
        await self.refresh()
        app = web.Application(middlewares=[self._authn])
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/readyz", self._health)
        app.router.add_get("/livez", self._health)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.settings.bind_address,
            self.settings.shim_port,
            ssl_context=self.tls.listener_context(),
        )
        await site.start()
        self._refresher = asyncio.create_task(self._refresh_loop())
        logger.info("aggregated API %s serving on port %d", GROUP_VERSION, self.settings.shim_port)

    async def register(self) -> None:
        """Apply the APIService, with the CA of the certificate in use."""
        await self.kube.apply(api_service(self.settings, self.ca_pem))

    async def stop(self) -> None:
        if self._refresher:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._runner:
            await self._runner.cleanup()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.shim_refresh_seconds)
            try:
                if await self.refresh():
                    await self.register()
                    logger.info("aggregated API: serving certificate or client CA rotated")
            except Exception as exc:  # keep serving with what we have
                logger.warning("aggregated API: refresh failed: %s", exc)

    # --- request handling -------------------------------------------------------------

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    @web.middleware
    async def _authn(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ("/healthz", "/readyz", "/livez"):
            return await handler(request)
        assert self.requestheader is not None
        peercert = request.transport.get_extra_info("peercert") if request.transport else None
        try:
            request["user"] = authenticate(self.requestheader, peercert, request.headers)
        except Unauthenticated as exc:
            return error(401, "Unauthorized", str(exc))
        return await handler(request)

    async def _dispatch(  # noqa: PLR0911 - a router: one return per route
        self, request: web.Request
    ) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path.startswith("/openapi/"):
            return self._openapi(path)
        if path == f"/apis/{GROUP}":
            return web.json_response(api_group())
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            return error(404, "NotFound", f"the server could not find {request.path}")
        if request.method not in ("GET", "HEAD"):
            return error(
                405, "MethodNotAllowed", f"{request.method} is not supported: this API is read-only"
            )
        if path == PREFIX:
            return web.json_response(api_resource_list())
        parts = path[len(PREFIX) + 1 :].split("/")
        user: User = request["user"]
        if request.query.get("watch") in ("1", "true"):
            return error(
                405,
                "MethodNotAllowed",
                f"watch is not supported on {parts[-1] if len(parts) % 2 else parts[-2]}",
            )
        if parts[0] == "tenantusages" and len(parts) <= 2:
            return await self._tenantusages(request, user, parts[1] if len(parts) == 2 else None)
        if len(parts) == 4 and parts[0] == "namespaces" and parts[2] == "kubeconfigs":
            return await self._kubeconfig(user, namespace=parts[1], name=parts[3])
        if len(parts) == 3 and parts[0] == "namespaces" and parts[2] == "kubeconfigs":
            return error(
                405, "MethodNotAllowed", "list is not supported on kubeconfigs: get one by name"
            )
        if parts[0] == "kubeconfigs":
            return error(
                405, "MethodNotAllowed", "kubeconfigs are namespaced: get one by namespace and name"
            )
        if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] == "tenantusages":
            return error(404, "NotFound", "tenantusages are cluster-scoped")
        return error(
            404, "NotFound", f"the server could not find the requested resource ({'/'.join(parts)})"
        )

    async def _check(
        self, user: User, verb: str, resource: str, name: str | None, namespace: str | None
    ) -> web.Response | None:
        allowed, reason = await self.authorizer.allowed(user, verb, resource, name, namespace)
        if allowed:
            return None
        where = f" in the namespace {namespace!r}" if namespace else " at the cluster scope"
        target = f"{resource}.{GROUP} {name!r}" if name else f"{resource}.{GROUP}"
        return error(
            403,
            "Forbidden",
            f'{target} is forbidden: User "{user.name}" cannot '
            f"{verb} resource {resource!r} in API group {GROUP!r}{where}"
            + (f": {reason}" if reason else ""),
        )

    async def _tenantusages(
        self, request: web.Request, user: User, name: str | None
    ) -> web.Response:
        if name is not None and not _NAME.match(name):
            return error(400, "BadRequest", f"{name!r} is not a valid tenant name")
        denied = await self._check(user, "get" if name else "list", "tenantusages", name, None)
        if denied:
            return denied
        custom = client.CustomObjectsApi(self.kube.api)
        if name is None:
            tenants = (
                await custom.list_cluster_custom_object("kubenova.io", "v1alpha1", "tenants")
            )["items"]
        else:
            try:
                tenants = [
                    await custom.get_cluster_custom_object(
                        "kubenova.io", "v1alpha1", "tenants", name
                    )
                ]
            except ApiException as exc:
                if exc.status == 404:
                    return error(404, "NotFound", f'tenantusages.{GROUP} "{name}" not found')
                raise
        items = [await self._usage(t) for t in tenants]
        if wants_table(request.headers.get("Accept", "")):
            return web.json_response(usage_table(items))
        if name is not None:
            return web.json_response(items[0])
        return web.json_response(
            {"apiVersion": GROUP_VERSION, "kind": "TenantUsageList", "metadata": {}, "items": items}
        )

    async def _usage(self, tenant: dict[str, Any]) -> dict[str, Any]:
        core = client.CoreV1Api(self.kube.api)
        selector = f"{L.TENANT}={tenant['metadata']['name']},{L.MANAGED_SELECTOR}"
        quotas = [
            self.kube.api.sanitize_for_serialization(q)
            for q in (
                await core.list_resource_quota_for_all_namespaces(label_selector=selector)
            ).items
        ]
        pods: dict[str, int] = {}
        for quota in quotas:
            ns = quota["metadata"]["namespace"]
            listed = await core.list_namespaced_pod(
                ns, field_selector="status.phase!=Succeeded,status.phase!=Failed"
            )
            pods[ns] = len(listed.items)
        return tenant_usage(tenant, quotas, pods)

    async def _kubeconfig(self, user: User, *, namespace: str, name: str) -> web.Response:
        if not (_NAME.match(namespace) and _NAME.match(name)):
            return error(400, "BadRequest", "namespace and name must be DNS labels")
        denied = await self._check(user, "get", "kubeconfigs", name, namespace)
        if denied:
            return denied
        custom = client.CustomObjectsApi(self.kube.api)
        body = None
        # `kubeconfigs/owner` is the tenant's default-owner request, unless a request
        # is named exactly that.
        for candidate in (name, f"default-{name}"):
            try:
                body = await custom.get_namespaced_custom_object(
                    "kubenova.io", "v1alpha1", namespace, "kubeconfigrequests", candidate
                )
                break
            except ApiException as exc:
                if exc.status != 404:
                    raise
        if body is None:
            return error(
                404,
                "NotFound",
                f'kubeconfigs.{GROUP} "{name}" not found: there is '
                f"no KubeConfigRequest {name!r} in {namespace!r}",
            )
        body.setdefault("apiVersion", API_VERSION)
        body.setdefault("kind", "KubeConfigRequest")
        try:
            kubeconfig, expires = await self.mint(body)
        except CredentialRefused as refused:
            return error(409, "Conflict", refused.message)
        logger.info(
            "aggregated API: minted a kubeconfig of %s/%s for %s",
            namespace,
            body["metadata"]["name"],
            user.name,
        )
        return web.json_response(
            kubeconfig_object(
                name,
                namespace,
                kubeconfig,
                expires.isoformat().replace("+00:00", "Z") if expires else None,
            )
        )

    def _openapi(self, path: str) -> web.Response:
        if path == "/openapi/v2":
            return web.json_response(openapi_v2())
        if path == "/openapi/v3":
            return web.json_response(openapi_v3_discovery())
        if path == f"/openapi/v3/apis/{GROUP}/{VERSION}":
            return web.json_response(openapi_v3_group())
        return error(404, "NotFound", f"no OpenAPI document at {path}")
