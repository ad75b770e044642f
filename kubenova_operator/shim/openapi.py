"""OpenAPI for the aggregated API, so `kubectl explain tenantusages` works.

The API server aggregates /openapi/v2 and /openapi/v3 of every APIService; each schema
carries x-kubernetes-group-version-kind, which is how kubectl finds it.
"""

from __future__ import annotations

from typing import Any

from . import GROUP, VERSION

_PREFIX = "io.kubenova.api.v1alpha1"
_QUANTITIES = {"type": "object", "additionalProperties": {"type": "string"}}


def _schemas() -> dict[str, Any]:
    ns_usage = {
        "type": "object",
        "description": "One namespace of the tenant.",
        "properties": {
            "name": {"type": "string"},
            "project": {"type": "string", "description": "Its project, if any."},
            "environment": {"type": "string"},
            "hard": {**_QUANTITIES, "description": "Its ResourceQuota."},
            "used": {**_QUANTITIES, "description": "What its ResourceQuota counts as used."},
            "pods": {"type": "integer", "description": "Pods not finished, counted now."},
        },
    }
    meta = {"type": "object", "description": "Standard object metadata."}
    return {
        f"{_PREFIX}.TenantUsage": {
            "type": "object",
            "description": "A tenant's usage against its budget, computed when asked from "
            "the ResourceQuota status of its namespaces and its live pods.",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": meta,
                "budget": {**_QUANTITIES, "description": "The Tenant's spec.budget.hard."},
                "used": {**_QUANTITIES, "description": "Used, summed over its namespaces."},
                "pods": {"type": "integer", "description": "Pods not finished, now."},
                "projects": {
                    "type": "array",
                    "description": "Usage per project.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "used": _QUANTITIES,
                            "namespaces": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
                "namespaces": {
                    "type": "array",
                    "description": "Usage per namespace.",
                    "items": ns_usage,
                },
            },
            "x-kubernetes-group-version-kind": [
                {"group": GROUP, "version": VERSION, "kind": "TenantUsage"}
            ],
        },
        f"{_PREFIX}.KubeConfig": {
            "type": "object",
            "description": "A kubeconfig minted for the caller from a KubeConfigRequest of "
            "the same name (or default-<name>); nothing is stored.",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": meta,
                "kubeconfig": {"type": "string", "description": "The kubeconfig (YAML)."},
                "expiresAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When its token expires.",
                },
            },
            "x-kubernetes-group-version-kind": [
                {"group": GROUP, "version": VERSION, "kind": "KubeConfig"}
            ],
        },
    }


def openapi_v3_discovery() -> dict[str, Any]:
    return {
        "paths": {
            f"apis/{GROUP}/{VERSION}": {"serverRelativeURL": f"/openapi/v3/apis/{GROUP}/{VERSION}"}
        }
    }


def _op(ref: str, kind: str, action: str) -> dict[str, Any]:
    """A GET operation. kubectl explain maps a resource to its schema through the
    x-kubernetes-group-version-kind of the operations on the resource's path."""
    return {
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": GROUP, "version": VERSION, "kind": kind},
    }


def openapi_v3_group() -> dict[str, Any]:
    usage = f"#/components/schemas/{_PREFIX}.TenantUsage"
    kubeconfig = f"#/components/schemas/{_PREFIX}.KubeConfig"
    base = f"/apis/{GROUP}/{VERSION}"
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubenova aggregated API", "version": VERSION},
        "paths": {
            f"{base}/tenantusages": {"get": _op(usage, "TenantUsage", "list")},
            f"{base}/tenantusages/{{name}}": {"get": _op(usage, "TenantUsage", "get")},
            f"{base}/namespaces/{{namespace}}/kubeconfigs/{{name}}": {
                "get": _op(kubeconfig, "KubeConfig", "get")
            },
        },
        "components": {"schemas": _schemas()},
    }


def openapi_v2() -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Kubenova aggregated API", "version": VERSION},
        "paths": {},
        "definitions": _schemas(),
    }
