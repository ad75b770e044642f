"""The APIService that routes `api.kubenova.io/v1alpha1` to the shim."""

from __future__ import annotations

import base64
from typing import Any

from ..config import Settings
from ..resources import labels as L
from . import GROUP, VERSION

APISERVICE_NAME = f"{VERSION}.{GROUP}"


def api_service(settings: Settings, ca_pem: bytes | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "group": GROUP,
        "version": VERSION,
        "groupPriorityMinimum": 1000,
        "versionPriority": 15,
        "service": {
            "namespace": settings.namespace,
            "name": settings.shim_service_name,
            "port": settings.shim_service_port,
        },
    }
    if ca_pem is not None:
        # Generated certificate: its CA is ours to publish. A mounted (cert-manager)
        # certificate's CA is injected by cert-manager's cainjector instead.
        spec["caBundle"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": APISERVICE_NAME, "labels": {L.MANAGED_BY: L.MANAGER}},
        "spec": spec,
    }
