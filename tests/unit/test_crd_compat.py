"""A CRD change never breaks a served version: the generated CRDs (crds/) against the
last release's (crds/released/<release>/), field by field (kubenova_operator/api/compat.py).

A deliberate break is a new API version: the released versions stay served with their
schemas, and the new one is added beside them (docs/install.md#crd-versions). At a
release, copy crds/kubenova.io_*.yaml to crds/released/<release>/.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubenova_operator.api import ALL_KINDS
from kubenova_operator.api.compat import breaking_changes
from kubenova_operator.api.crdgen import build_crd

REPO = Path(__file__).resolve().parents[2]
RELEASES = sorted(
    (REPO / "crds" / "released").iterdir(),
    key=lambda p: tuple(int(part) for part in p.name.split(".")),
)
LAST = RELEASES[-1]
CURRENT = {crd["metadata"]["name"]: crd for crd in (build_crd(kind) for kind in ALL_KINDS)}
RELEASED = {p.name: yaml.safe_load(p.read_text()) for p in sorted(LAST.glob("*.yaml"))}


def test_every_released_kind_is_still_generated() -> None:
    assert RELEASED, f"no CRDs in {LAST}"
    assert {crd["metadata"]["name"] for crd in RELEASED.values()} <= set(CURRENT)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_served_versions_keep_their_schema(name: str) -> None:
    released = RELEASED[name]
    current = CURRENT[released["metadata"]["name"]]
    assert breaking_changes(released, current) == []


def tenant() -> dict[str, Any]:
    return copy.deepcopy(RELEASED["kubenova.io_tenants.yaml"])


def spec(crd: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    return found


def test_a_removed_field_is_a_break() -> None:
    current = tenant()
    field = sorted(spec(current)["properties"])[0]
    del spec(current)["properties"][field]
    assert breaking_changes(tenant(), current) == [
        f"tenants.kubenova.io v1alpha1.spec.{field}: removed"
    ]


def test_a_retyped_field_is_a_break() -> None:
    current = tenant()
    name, field = sorted(spec(current)["properties"].items())[0]
    field["type"] = "integer" if field["type"] != "integer" else "string"
    (problem,) = breaking_changes(tenant(), current)
    assert problem.startswith(f"tenants.kubenova.io v1alpha1.spec.{name}: type ")


def test_a_version_no_longer_served_is_a_break() -> None:
    current = tenant()
    current["spec"]["versions"][0]["served"] = False
    assert breaking_changes(tenant(), current) == ["tenants.kubenova.io v1alpha1: no longer served"]


def test_a_new_optional_field_and_a_new_version_are_not() -> None:
    current = tenant()
    spec(current)["properties"]["somethingNew"] = {"type": "string"}
    v1beta1 = copy.deepcopy(current["spec"]["versions"][0]) | {"name": "v1beta1", "storage": False}
    current["spec"]["versions"].append(v1beta1)
    assert breaking_changes(tenant(), current) == []
    spec(current)["required"] = [*spec(current).get("required", []), "somethingNew"]
    assert breaking_changes(tenant(), current) == [
        "tenants.kubenova.io v1alpha1.spec.somethingNew: newly required"
    ]
