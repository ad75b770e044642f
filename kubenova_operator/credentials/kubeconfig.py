"""The kubeconfig handed to a user: one cluster, one token, one context (pure)."""

from __future__ import annotations

import base64

import yaml


def render_kubeconfig(
    *, name: str, server: str, ca_pem: bytes | None, token: str, namespace: str
) -> str:
    cluster: dict[str, str] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
            ],
        },
        sort_keys=False,
    )
