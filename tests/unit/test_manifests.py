"""Every manifest we ship is valid: built-in kinds against the Kubernetes schemas
(kubernetes-validate, strict), our own kinds against the models that are the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubenova_operator.api import ALL_KINDS, API_VERSION

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.34.0"
OURS = {kind.info.kind: kind for kind in ALL_KINDS}
# Files for kube-apiserver's flags, not objects to apply (test_audit_policy.py checks it),
# and promtool's test cases for the alerts (tests/e2e/test_monitoring_rules.py).
NOT_OBJECTS = {"manifests/audit/policy.yaml", "manifests/monitoring/alerts-test.yaml"}
# Optional kustomizations of their own, not in manifests/kustomization.yaml.
OPTIONAL = ("monitoring",)
# Kinds of other operators (the Prometheus Operator's): no Kubernetes schema to check
# them against; promtool checks the rules.
FOREIGN = ("monitoring.coreos.com/",)


def documents(*globs: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for pattern in globs:
        for path in sorted(REPO.glob(pattern)):
            if path.name == "kustomization.yaml" or str(path.relative_to(REPO)) in NOT_OBJECTS:
                continue
            for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
                if doc:
                    out.append((f"{path.relative_to(REPO)}#{index}", doc))
    return out


BUILTIN = [
    (n, d)
    for n, d in documents("manifests/**/*.yaml", "crds/*.yaml", "examples/*.yaml")
    if d["apiVersion"] != API_VERSION and not d["apiVersion"].startswith(FOREIGN)
]
CUSTOM = [(n, d) for n, d in documents("examples/*.yaml") if d["apiVersion"] == API_VERSION]


@pytest.mark.parametrize(("name", "doc"), BUILTIN, ids=[n for n, _ in BUILTIN])
def test_builtin_manifest_is_valid(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("name", "doc"), CUSTOM, ids=[n for n, _ in CUSTOM])
def test_example_is_a_valid_kubenova_object(name: str, doc: dict[str, Any]) -> None:
    model = OURS[doc["kind"]]
    model.model_validate(doc)
    assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"}


def test_there_is_something_to_check() -> None:
    kinds = {d["kind"] for _, d in BUILTIN}
    assert {"Deployment", "ClusterRole", "CustomResourceDefinition"} <= kinds
    assert {"Tenant", "Project"} <= {d["kind"] for _, d in CUSTOM}


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((REPO / "manifests/kustomization.yaml").read_text())["resources"]
    files = {
        str(p.relative_to(REPO / "manifests"))
        for p in (REPO / "manifests").rglob("*.yaml")
        if p.name != "kustomization.yaml"
        and str(p.relative_to(REPO)) not in NOT_OBJECTS
        and not str(p.relative_to(REPO / "manifests")).startswith(OPTIONAL)
    }
    assert files <= set(listed), files - set(listed)
    for optional in OPTIONAL:
        directory = REPO / "manifests" / optional
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        own = {
            p.name
            for p in directory.glob("*.yaml")
            if p.name != "kustomization.yaml" and str(p.relative_to(REPO)) not in NOT_OBJECTS
        }
        assert own == set(kustomization["resources"]), optional
    crds = yaml.safe_load((REPO / "crds/kustomization.yaml").read_text())["resources"]
    assert sorted(crds) == sorted(p.name for p in (REPO / "crds").glob("kubenova.io_*.yaml"))
