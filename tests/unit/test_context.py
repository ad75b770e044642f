"""The operator's shared state is one Context, reached through kopf's memo and passed
explicitly below the handlers (docs/architecture.md, State): nothing module-global."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any, cast

import kopf
import pytest

from kubenova_operator.config import get_settings
from kubenova_operator.controllers.context import Context, context_of
from kubenova_operator.controllers.kubeconfigrequest import Refused
from kubenova_operator.controllers.queue import TenantQueue
from kubenova_operator.credentials.errors import CredentialRefused
from kubenova_operator.kube import store
from kubenova_operator.kube.store import Stores

PACKAGE = Path(__file__).resolve().parents[2] / "kubenova_operator"


async def _idle(key: str, triggers: frozenset[str]) -> None:
    return None


def _context() -> Context:
    return Context(
        kube=cast(Any, None),
        settings=get_settings(),
        queue=TenantQueue(_idle),
        vela_queue=TenantQueue(_idle, what="VelaSync"),
        capsule_queue=TenantQueue(_idle, what="CapsuleSync"),
    )


def test_handlers_find_the_context_in_kopfs_memo_and_its_copies() -> None:
    memo = kopf.Memo()
    with pytest.raises(RuntimeError):
        context_of(memo)
    context = _context()
    memo.context = context
    assert context_of(memo) is context
    # kopf gives each object a shallow copy of the root memo: the same Context.
    assert context_of(copy.copy(memo)) is context


def test_each_context_has_its_own_stores_and_bookkeeping() -> None:
    one, two = _context(), _context()
    one.stores.keep_application(
        {
            "kind": "Application",
            "metadata": {"name": "app", "namespace": "ns", "managedFields": [{}]},
            "spec": {"components": [{}], "policies": [{"type": "x"}]},
            "status": {"status": "running"},
        }
    )
    kept = one.stores.applications["ns"]["app"]
    assert kept["spec"] == {"policies": [{"type": "x"}]}
    assert "managedFields" not in kept["metadata"]
    assert two.stores.applications == {}
    one.stores.drop_application("ns", "app")
    one.stores.drop_application("elsewhere", "app")  # nothing to drop: no error
    assert one.stores.applications["ns"] == {}
    one.credentials.expiries[("ns", "r")] = cast(Any, None)
    one.vela.checked[("ns", "app")] = (3, 1)
    assert two.credentials.expiries == {} and two.vela.checked == {}
    assert isinstance(Stores().parents, store.Store)


def test_no_module_global_state_is_left() -> None:
    """No `global` statement in the package, and no Store or store-shaped object at the
    top level of kube/store.py or controllers/ (constants and registries aside)."""
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        assert not any(isinstance(n, ast.Global) for n in ast.walk(tree)), path
    mutable = ("Store", "dict", "defaultdict", "set", "Lock")
    for path in [PACKAGE / "kube" / "store.py", *(PACKAGE / "controllers").glob("*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if value is None:
                continue
            if isinstance(value, ast.Call):
                called = ast.unparse(value.func).split(".")[-1]
                assert called not in mutable, f"{path}: {ast.unparse(node)}"
            assert not isinstance(value, ast.Set), f"{path}: {ast.unparse(node)}"
            # An empty literal is somewhere to put state; a filled one is a table.
            empty = (isinstance(value, ast.Dict) and not value.keys) or (
                isinstance(value, ast.List) and not value.elts
            )
            assert not empty, f"{path}: {ast.unparse(node)}"
    source = (PACKAGE / "controllers" / "context.py").read_text()
    assert "def ctx(" not in source and "def set_context(" not in source


def test_the_aggregated_api_does_not_import_the_controllers() -> None:
    for path in (PACKAGE / "shim").glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert "controllers" not in (node.module or ""), path
    # What it catches is what the controller raises.
    refused = Refused("ProjectNotReady", "not yet", waiting=True)
    assert isinstance(refused, CredentialRefused)
    assert (refused.reason, refused.message) == ("ProjectNotReady", "not yet")
    assert refused.outcome().reason == "ProjectNotReady"
