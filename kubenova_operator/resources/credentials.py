"""The kubeconfigs every tenant gets: default owner and readonly requests."""

from __future__ import annotations

from typing import Any

from ..api.common import API_VERSION
from ..api.tenant import owner_namespace
from . import labels as L

DEFAULT_SECRET = "kubenova-kubeconfigs"


def default_requests(tenant: str) -> list[dict[str, Any]]:
    """KubeConfigRequests `default-owner` and `default-readonly`, delivering to the keys
    `owner` and `readonly` of Secret `kubenova-kubeconfigs` in `<tenant>-owner`."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "KubeConfigRequest",
            "metadata": {
                "name": f"default-{role}",
                "namespace": owner_namespace(tenant),
                "labels": L.managed_labels(tenant),
            },
            "spec": {
                "role": role,
                "delivery": {"mode": "Secret", "secretName": DEFAULT_SECRET, "secretKey": role},
            },
        }
        for role in ("owner", "readonly")
    ]
