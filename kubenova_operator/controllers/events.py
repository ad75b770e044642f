"""Kubernetes Events on the objects users look at (never with secrets in them)."""

from __future__ import annotations

from typing import Any

import kopf


def _ref(body: dict[str, Any]) -> kopf.Body:
    meta = body["metadata"]
    return kopf.Body(
        {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid")  # type: ignore[typeddict-item]
                if meta.get(k)
            },
        }
    )


def normal(body: dict[str, Any], reason: str, message: str) -> None:
    kopf.event(_ref(body), type="Normal", reason=reason, message=message[:1024])


def warning(body: dict[str, Any], reason: str, message: str) -> None:
    kopf.event(_ref(body), type="Warning", reason=reason, message=message[:1024])
