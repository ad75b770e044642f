"""The CRDs in crds/ are generated from the models and structurally sound."""

from __future__ import annotations

from typing import Any

import pytest

from kubenova_operator.api import ALL_KINDS, CustomResource, Tenant
from kubenova_operator.api.crdgen import build_crd, crd_path, main, render


def test_committed_crds_match_the_models() -> None:
    assert main(["--check"]) == 0, "run: python -m kubenova_operator.api.crdgen"


def _walk(node: Any, path: str = "") -> list[str]:
    """Paths of schema nodes that break the structural-schema rules."""
    problems: list[str] = []
    if isinstance(node, dict):
        if "$ref" in node:
            problems.append(f"{path}: $ref")
        if "properties" in node and node.get("type") != "object":
            problems.append(f"{path}: properties without type object")
        if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{path}: anyOf outside int-or-string")
        if (
            "type" not in node
            and not node.get("x-kubernetes-int-or-string")
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            problems.append(f"{path}: no type")
        for key in ("properties",):
            for name, sub in node.get(key, {}).items():
                problems += _walk(sub, f"{path}.{name}")
        if "items" in node:
            problems += _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            problems += _walk(node["additionalProperties"], f"{path}{{}}")
    return problems


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.info.kind)
def test_schema_is_structural(kind: type[CustomResource]) -> None:
    schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.info.kind)
def test_crd_is_served_as_documented(kind: type[CustomResource]) -> None:
    crd = build_crd(kind)
    assert crd["spec"]["names"]["categories"] == ["kubenova"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert "Ready" in columns and columns[-1] == "Age"
    assert crd_path(kind).name == f"kubenova.io_{kind.info.plural}.yaml"
    assert render(kind).startswith("# Generated")


def test_descriptions_reach_kubectl_explain() -> None:
    spec = build_crd(Tenant)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]["properties"]
    assert "Retain (default)" in spec["deletionPolicy"]["description"]
    assert spec["networkIsolation"]["enum"] == ["Strict", "Tenant", "None"]
    assert spec["networkIsolation"]["default"] == "Tenant"
