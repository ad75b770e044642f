"""Schema compatibility between a released CRD and the one generated now.

A served version of a released CRD is a promise to every stored object and every
client: a field it had may not disappear or change type, and no field may become
required, under the same version name. Anything else (a new optional field, a new
version) is allowed. A deliberate break is a new version (v1beta1), served beside the
old one with conversion (docs/install.md#crd-versions); tests/unit/test_crd_compat.py
holds crds/ to the last release under crds/released/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _properties(path: str, old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    old_props, new_props = old.get("properties") or {}, new.get("properties") or {}
    for name, schema in old_props.items():
        if name in new_props:
            yield from _breaks(f"{path}.{name}", schema, new_props[name])
        elif not new.get("x-kubernetes-preserve-unknown-fields"):
            yield f"{path}.{name}: removed"
    for name in sorted(set(new.get("required") or []) - set(old.get("required") or [])):
        yield f"{path}.{name}: newly required"


def _breaks(path: str, old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    old_type, new_type = old.get("type"), new.get("type")
    if old_type != new_type:
        yield f"{path}: type {old_type} became {new_type}"
        return
    if old.get("x-kubernetes-preserve-unknown-fields") and not new.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        yield f"{path}: no longer preserves unknown fields"
    yield from _properties(path, old, new)
    for key in ("items", "additionalProperties"):
        if isinstance(old.get(key), dict):
            if not isinstance(new.get(key), dict):
                yield f"{path}: {key} removed"
            else:
                yield from _breaks(f"{path}[{key}]", old[key], new[key])
    for value in old.get("enum", []) if "enum" in new else []:
        if value not in new["enum"]:
            yield f"{path}: value {value!r} no longer allowed"


def breaking_changes(released: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What `current` (a CRD) breaks of the versions `released` served."""
    name = released["metadata"]["name"]
    now = {v["name"]: v for v in current["spec"]["versions"]}
    problems = []
    for version in released["spec"]["versions"]:
        if not version.get("served"):
            continue
        where = f"{name} {version['name']}"
        if not now.get(version["name"], {}).get("served"):
            problems.append(f"{where}: no longer served")
            continue
        problems.extend(
            _breaks(
                where,
                version["schema"]["openAPIV3Schema"],
                now[version["name"]]["schema"]["openAPIV3Schema"],
            )
        )
    return problems
