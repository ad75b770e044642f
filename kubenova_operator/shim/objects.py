"""What the aggregated API returns, as pure functions: discovery, Status, Tables, and
the TenantUsage computed from ResourceQuotas and pods."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..resources import labels as L
from ..resources.quantity import format_resources, sum_resources
from . import GROUP, GROUP_VERSION, VERSION

# `kubectl get kubenova` lists every resource of the category: only listable ones join.
RESOURCES: dict[str, dict[str, Any]] = {
    "tenantusages": {
        "kind": "TenantUsage",
        "namespaced": False,
        "verbs": ["get", "list"],
        "singularName": "tenantusage",
        "shortNames": ["tu"],
        "categories": ["kubenova"],
    },
    "kubeconfigs": {
        "kind": "KubeConfig",
        "namespaced": True,
        "verbs": ["get"],
        "singularName": "kubeconfig",
        "shortNames": [],
        "categories": [],
    },
}


def api_resource_list() -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {
                "name": name,
                "kind": spec["kind"],
                "namespaced": spec["namespaced"],
                "verbs": spec["verbs"],
                "singularName": spec["singularName"],
                "shortNames": spec["shortNames"],
                "categories": spec["categories"],
            }
            for name, spec in RESOURCES.items()
        ],
    }


def api_group() -> dict[str, Any]:
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [version],
        "preferredVersion": version,
    }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A metav1.Status, the error shape kubectl and client libraries understand."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _ns_usage(quota: Mapping[str, Any], pods: int) -> dict[str, Any]:
    meta = quota["metadata"]
    labels = meta.get("labels") or {}
    st = quota.get("status") or {}
    out: dict[str, Any] = {
        "name": meta["namespace"],
        "hard": dict(st.get("hard") or {}),
        "used": dict(st.get("used") or {}),
        "pods": pods,
    }
    if labels.get(L.PROJECT):
        out["project"] = labels[L.PROJECT]
    if labels.get(L.ENVIRONMENT):
        out["environment"] = labels[L.ENVIRONMENT]
    return out


def tenant_usage(
    tenant: Mapping[str, Any],
    quotas: Iterable[Mapping[str, Any]],
    pods_by_namespace: Mapping[str, int],
) -> dict[str, Any]:
    """A TenantUsage: the tenant's budget, what its namespaces use (quota status, kept
    by the controller-manager), live pod counts, per project and per namespace."""
    name = tenant["metadata"]["name"]
    namespaces = sorted(
        (_ns_usage(q, pods_by_namespace.get(q["metadata"]["namespace"], 0)) for q in quotas),
        key=lambda n: n["name"],
    )
    projects: dict[str, list[dict[str, Any]]] = {}
    for ns in namespaces:
        if "project" in ns:
            projects.setdefault(ns["project"], []).append(ns)
    used = sum_resources(ns["used"] for ns in namespaces)
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "TenantUsage",
        "metadata": {
            "name": name,
            "creationTimestamp": tenant["metadata"].get("creationTimestamp"),
        },
        "budget": dict(((tenant.get("spec") or {}).get("budget") or {}).get("hard") or {}),
        "used": format_resources(used),
        "pods": sum(ns["pods"] for ns in namespaces),
        "projects": [
            {
                "name": project,
                "used": format_resources(sum_resources(n["used"] for n in nss)),
                "namespaces": [n["name"] for n in nss],
            }
            for project, nss in sorted(projects.items())
        ],
        "namespaces": namespaces,
    }


def _fraction(usage: Mapping[str, Any], key: str) -> str:
    used = usage["used"].get(key)
    budget = usage["budget"].get(key)
    if used is None and budget is None:
        return "-"
    return f"{used or 0}/{budget if budget is not None else '∞'}"


def usage_table(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table, so `kubectl get tenantusages` prints useful columns."""
    columns = [
        ("Name", "string", "The tenant."),
        ("CPU Requests", "string", "requests.cpu used / budget"),
        ("Memory Requests", "string", "requests.memory used / budget"),
        ("Pods", "integer", "Pods running in the tenant's namespaces now"),
        ("Namespaces", "integer", "Namespaces with a Kubenova quota"),
        ("Projects", "integer", "Projects using resources"),
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            {
                "name": n,
                "type": t,
                "format": "name" if n == "Name" else "",
                "description": d,
                "priority": 0,
            }
            for n, t, d in columns
        ],
        "rows": [
            {
                "cells": [
                    u["metadata"]["name"],
                    _fraction(u, "requests.cpu"),
                    _fraction(u, "requests.memory"),
                    u["pods"],
                    len(u["namespaces"]),
                    len(u["projects"]),
                ],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": u["metadata"],
                },
            }
            for u in items
        ],
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def kubeconfig_object(
    name: str, namespace: str, kubeconfig: str, expires_at: str | None
) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "KubeConfig",
        "metadata": {"name": name, "namespace": namespace},
        "kubeconfig": kubeconfig,
        "expiresAt": expires_at,
    }
