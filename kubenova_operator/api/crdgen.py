"""Generate the CustomResourceDefinitions in `crds/` from the pydantic models.

    python -m kubenova_operator.api.crdgen          # write crds/*.yaml
    python -m kubenova_operator.api.crdgen --check  # exit 1 if they are stale

This plays controller-gen's part for a Python project: the models are the single
source of truth, and a unit test fails when the committed YAML differs from them.
Pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema (no
$ref, no anyOf-with-null, a type on every node), so the schema is rewritten here.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

from . import ALL_KINDS
from .common import GROUP, VERSION, CustomResource

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
CATEGORY = "kubenova"
# Keys of pydantic's JSON Schema that have no place in a CRD schema.
_DROP = {"title", "$defs", "discriminator"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:  # noqa: PLR0912 - one pass, one place
    """Inline $refs, collapse Optional[...] and drop what CRDs do not allow."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    while True:
        any_of = node.get("anyOf")
        if any_of and any(branch == {"type": "null"} for branch in any_of):
            rest = [branch for branch in any_of if branch != {"type": "null"}]
            del node["anyOf"]
            if len(rest) == 1:
                node = {**rest[0], **node}
            else:
                node["anyOf"] = rest
            if node.get("default", "") is None:
                del node["default"]
        elif "$ref" in node:
            target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
            # Keys beside the $ref (the field's own description, default) win over
            # the referenced model's.
            node = {**target, **node}
        else:
            break
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _resolve(value, defs)
    if out.get("x-kubernetes-int-or-string"):
        # Structural schemas allow only this exact anyOf under int-or-string.
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif "enum" in out and "type" not in out:
        out["type"] = "string"
    if "description" in out:
        out["description"] = " ".join(out["description"].split())
    first = [k for k in ("description", "type") if k in out]
    return {**{k: out[k] for k in first}, **{k: v for k, v in out.items() if k not in first}}


def openapi_schema(kind: type[CustomResource]) -> dict[str, Any]:
    """The structural schema of one kind."""
    raw = kind.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    props = _resolve(raw["properties"], defs)
    schema: dict[str, Any] = {
        "type": "object",
        "description": kind.info.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": props["spec"],
            "status": props["status"],
        },
    }
    if "spec" in raw.get("required", []):
        schema["required"] = ["spec"]
    if kind.info.validations:
        schema["x-kubernetes-validations"] = kind.info.validations
    return schema


def build_crd(kind: type[CustomResource]) -> dict[str, Any]:
    info = kind.info
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "kubenova"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": info.short_names,
                "categories": [CATEGORY],
            },
            "scope": info.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": col.name,
                            "type": col.type,
                            "jsonPath": col.json_path,
                            **({"description": col.description} if col.description else {}),
                            **({"priority": col.priority} if col.priority else {}),
                        }
                        for col in info.printer_columns
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema(kind)},
                }
            ],
        },
    }


def crd_path(kind: type[CustomResource]) -> Path:
    return CRD_DIR / f"{GROUP}_{kind.info.plural}.yaml"


def render(kind: type[CustomResource]) -> str:
    header = (
        "# Generated by `python -m kubenova_operator.api.crdgen` from the models. Do not edit.\n"
    )
    body = yaml.safe_dump(build_crd(kind), sort_keys=False, width=100, allow_unicode=True)
    return header + body


def write_generated(files: list[tuple[Path, str]], check: bool, root: Path, command: str) -> int:
    """Write each generated (path, text) that differs from what is on disk, or with
    `check` show the differences and fail: the one loop behind crdgen and docgen."""
    stale = []
    for path, text in files:
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if check:
            stale.append(path.name)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), str(path), "generated"
                )
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(root)}")
    if stale:
        print(f"stale: {', '.join(stale)}: run python -m {command}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if crds/ is stale")
    args = parser.parse_args(argv)
    files = [(crd_path(kind), render(kind)) for kind in ALL_KINDS]
    return write_generated(files, args.check, CRD_DIR.parent, "kubenova_operator.api.crdgen")


if __name__ == "__main__":
    sys.exit(main())
