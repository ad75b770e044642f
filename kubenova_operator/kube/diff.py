"""Does an object in the cluster match what Kubenova wants? (No API calls.)

Desired objects are partial, as in server-side apply: only the fields Kubenova sets
are compared, so fields others add (defaults, other controllers' labels, status) never
count as drift. Quantities compare by value ("1000m" == "1"): below the paths the child
kinds declare (kube/kinds.py, `quantity_paths`).
"""

from __future__ import annotations

from typing import Any

from ..resources.quantity import equal_quantities
from .kinds import QUANTITY_PATHS


def differences(desired: Any, observed: Any, path: str = "") -> list[str]:  # noqa: PLR0911
    """The paths where `observed` does not carry what `desired` says."""
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return [path or "."]
        out: list[str] = []
        for key, value in desired.items():
            sub = f"{path}.{key}" if path else key
            if key not in observed:
                if value in ({}, []):
                    continue  # empty means "none": absent is the same
                out.append(sub)
            else:
                out.extend(differences(value, observed[key], sub))
        return out
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(observed) != len(desired):
            return [path]
        out = []
        for index, (want, have) in enumerate(zip(desired, observed, strict=True)):
            out.extend(differences(want, have, f"{path}[{index}]"))
        return out
    if desired == observed:
        return []
    if (
        path.startswith(QUANTITY_PATHS)
        and isinstance(desired, str | int)
        and isinstance(observed, str | int)
        and equal_quantities(desired, observed)
    ):
        return []
    return [path]


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name): what identifies a child among a tenant's."""
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace") or "", meta["name"])


def describe(key: tuple[str, str, str]) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
