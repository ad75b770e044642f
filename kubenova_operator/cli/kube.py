"""The plugin's only way to the cluster: the caller's kubeconfig, the Kubernetes API and
Kubenova's aggregated API. It has no privileges of its own, so every API error is the
caller's, and a 403 is turned into a message naming the permission that is missing."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:  # imported when used: the client library takes a while to import,
    # and --help and shell completion need none of it
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

T = TypeVar("T")
GROUP, VERSION = "kubenova.io", "v1alpha1"
SHIM_GROUP = "api.kubenova.io"
MERGE = "application/merge-patch+json"
VELA_GROUP, VELA_VERSION = "core.oam.dev", "v1beta1"
_USER = re.compile(r'User "([^"]+)"')


@dataclass(frozen=True)
class Permission:
    """What a call needs: `kubectl auth can-i VERB RESOURCE[.GROUP][/NAME] [-n NS]`."""

    verb: str
    resource: str
    group: str = ""
    namespace: str | None = None
    name: str | None = None

    def qualified(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def can_i(self) -> str:
        target = self.qualified() + (f"/{self.name}" if self.name else "")
        return f"kubectl auth can-i {self.verb} {target}" + (
            f" -n {self.namespace}" if self.namespace else ""
        )

    def describe(self) -> str:
        where = f"in namespace {self.namespace}" if self.namespace else "at the cluster scope"
        name = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {self.qualified()}{name} {where}"


class CliError(Exception):
    """An error for the user: printed without a traceback, exit code 1."""


class Denied(CliError):
    def __init__(self, permission: Permission, server_message: str = "") -> None:
        self.permission = permission
        self.server_message = server_message
        match = _USER.search(server_message)
        self.user = match.group(1) if match else None
        super().__init__(self.explain())

    def explain(self) -> str:
        who = f"user {self.user!r}" if self.user else "your credentials"
        return (
            f"forbidden: missing permission to {self.permission.describe()} "
            f"({who}; check with `{self.permission.can_i()}`)"
        )


def api_exception() -> type[ApiException]:
    """The client library's ApiException (imported on first use)."""
    from kubernetes_asyncio.client.exceptions import ApiException

    return ApiException


def api_message(exc: ApiException) -> str:
    body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
    try:
        return str(yaml.safe_load(body).get("message") or exc.reason)
    except (AttributeError, yaml.YAMLError):
        return str(exc.reason or body)


async def guarded(call: Awaitable[T], permission: Permission) -> T:
    """Await an API call; a 403 becomes Denied naming `permission`."""
    try:
        return await call
    except api_exception() as exc:
        if exc.status == 403:
            raise Denied(permission, api_message(exc)) from None
        raise


def kubeconfig_path(explicit: str | None = None) -> Path:
    """The file to read (and merge contexts into): --kubeconfig, else the first entry
    of $KUBECONFIG, else ~/.kube/config, as kubectl does."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("KUBECONFIG", "")
    for entry in env.split(os.pathsep):
        if entry:
            return Path(entry).expanduser()
    return Path.home() / ".kube" / "config"


def context_namespace(kubeconfig: Path, context: str | None) -> str | None:
    """The namespace of the context in use (kubectl's default for namespaced calls)."""
    try:
        cfg = yaml.safe_load(kubeconfig.read_text()) or {}
    except OSError:
        return None
    name = context or cfg.get("current-context")
    for item in cfg.get("contexts") or []:
        if item.get("name") == name:
            ns = (item.get("context") or {}).get("namespace")
            return str(ns) if ns else None
    return None


class Kube:
    """An API client for the caller's kubeconfig, with the calls the plugin makes."""

    def __init__(self, api: client.ApiClient, namespace: str | None) -> None:
        from kubernetes_asyncio import client

        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    @classmethod
    async def connect(cls, kubeconfig: str | None, context: str | None) -> Kube:
        from kubernetes_asyncio import client, config

        path = kubeconfig_path(kubeconfig)
        if not path.exists():
            raise CliError(f"no kubeconfig at {path} (set KUBECONFIG or pass --kubeconfig)")
        configuration = client.Configuration()
        try:
            await config.load_kube_config(
                config_file=str(path),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except config.ConfigException as exc:
            raise CliError(f"cannot use {path}: {exc}") from None
        return cls(client.ApiClient(configuration), context_namespace(path, context))

    async def close(self) -> None:
        await self.api.close()

    # --- kubenova.io ------------------------------------------------------------------

    async def list_tenants(self) -> list[dict[str, Any]]:
        got = await guarded(
            self.custom.list_cluster_custom_object(GROUP, VERSION, "tenants"),
            Permission("list", "tenants", GROUP),
        )
        return list(got["items"])

    async def get_tenant(self, name: str) -> dict[str, Any]:
        return dict(
            await guarded(
                self.custom.get_cluster_custom_object(GROUP, VERSION, "tenants", name),
                Permission("get", "tenants", GROUP, name=name),
            )
        )

    async def list_namespaced(
        self, plural: str, namespace: str, group: str = GROUP, version: str = VERSION
    ) -> list[dict[str, Any]]:
        got = await guarded(
            self.custom.list_namespaced_custom_object(group, version, namespace, plural),
            Permission("list", plural, group, namespace=namespace),
        )
        return list(got["items"])

    async def get_namespaced(
        self, plural: str, namespace: str, name: str, group: str = GROUP, version: str = VERSION
    ) -> dict[str, Any]:
        return dict(
            await guarded(
                self.custom.get_namespaced_custom_object(group, version, namespace, plural, name),
                Permission("get", plural, group, namespace=namespace, name=name),
            )
        )

    async def merge_patch(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch (the generated client would send a JSON patch)."""
        call = self.custom.patch_namespaced_custom_object(  # type: ignore[call-arg]
            GROUP, VERSION, namespace, plural, name, patch, _content_type=MERGE
        )
        return dict(
            await guarded(call, Permission("patch", plural, GROUP, namespace=namespace, name=name))
        )

    # --- api.kubenova.io (the aggregated API) -----------------------------------------

    async def tenant_usage(self, name: str) -> dict[str, Any]:
        return dict(
            await guarded(
                self.custom.get_cluster_custom_object(SHIM_GROUP, VERSION, "tenantusages", name),
                Permission("get", "tenantusages", SHIM_GROUP, name=name),
            )
        )

    async def tenant_usages(self) -> list[dict[str, Any]]:
        got = await guarded(
            self.custom.list_cluster_custom_object(SHIM_GROUP, VERSION, "tenantusages"),
            Permission("list", "tenantusages", SHIM_GROUP),
        )
        return list(got["items"])

    # --- who am I, what may I see -----------------------------------------------------

    async def rules(self, namespace: str) -> list[dict[str, Any]]:
        """The caller's resource rules in `namespace` (cluster-wide grants included):
        a SelfSubjectRulesReview, which every authenticated user may create."""
        from kubernetes_asyncio import client

        review = await client.AuthorizationV1Api(self.api).create_self_subject_rules_review(
            client.V1SelfSubjectRulesReview(
                spec=client.V1SelfSubjectRulesReviewSpec(namespace=namespace)
            )
        )
        data = self.api.sanitize_for_serialization(review)
        return list((data.get("status") or {}).get("resourceRules") or [])
