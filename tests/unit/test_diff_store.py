from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubenova_operator.kube.diff import differences
from kubenova_operator.kube.store import Store


def test_only_desired_fields_count() -> None:
    desired = {"metadata": {"labels": {"a": "1"}}, "spec": {"hard": {"cpu": "1000m"}}}
    observed: dict[str, Any] = {
        "metadata": {"labels": {"a": "1", "other": "x"}, "uid": "u"},
        "spec": {"hard": {"cpu": "1"}},
        "status": {"used": {}},
    }
    assert differences(desired, observed) == []
    observed["metadata"]["labels"]["a"] = "2"
    assert differences(desired, observed) == ["metadata.labels.a"]
    assert differences({"subjects": [{"name": "a"}]}, {"subjects": []}) == ["subjects"]
    assert differences({"spec": {"podSelector": {}}}, {"spec": {}}) == []


def _obj(rv: str, label: str = "x", uid: str = "u1") -> dict[str, object]:
    return {
        "kind": "ConfigMap",
        "metadata": {
            "name": "n",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": rv,
            "labels": {"kubenova.io/tenant": label},
        },
    }


def test_store_ignores_stale_versions_and_indexes_by_tenant() -> None:
    store = Store()
    store.upsert(_obj("10"))
    store.upsert(_obj("9", label="stale"))
    kept = store.get(("ConfigMap", "ns", "n"))
    assert kept is not None and kept["metadata"]["resourceVersion"] == "10"
    store.upsert(_obj("12", label="y", uid="u2"))  # deleted and re-created: new uid wins
    assert [k for k, _ in store.of_tenant("y")] == [("ConfigMap", "ns", "n")]
    # A late event about the deleted one (a watch catching up) does not bring it back.
    store.upsert(_obj("10", label="x"))
    kept = store.get(("ConfigMap", "ns", "n"))
    assert kept is not None and kept["metadata"]["uid"] == "u2"
    assert list(store.of_tenant("x")) == []
    store.remove(("ConfigMap", "ns", "n"))
    assert len(store) == 0


def test_store_tells_an_echo_from_news() -> None:
    """An event of the version the store recorded from a write's answer (or an older
    one) is an echo; a newer version or another object of the name is news."""
    store = Store()
    key = ("ConfigMap", "ns", "n")
    assert not store.holds(key, _obj("10"))  # never seen
    store.upsert(_obj("10"))
    assert store.holds(key, _obj("10"))
    assert store.holds(key, _obj("9"))
    assert not store.holds(key, _obj("11"))
    assert not store.holds(key, _obj("10", uid="u2"))  # deleted and re-created
    assert not store.holds(key, {**_obj("10"), "metadata": {"name": "n", "namespace": "ns"}})


def test_store_finds_a_kind_in_a_namespace_without_a_scan() -> None:
    store = Store()
    for ns, name in (("a-owner", "web"), ("b-owner", "web"), ("a-owner", "api")):
        store.upsert({"kind": "Project", "metadata": {"name": name, "namespace": ns}})
    store.upsert({"kind": "KubeConfigRequest", "metadata": {"name": "r", "namespace": "a-owner"}})
    names = [p["metadata"]["name"] for p in store.in_namespace("Project", "a-owner")]
    assert names == ["api", "web"]
    store.remove(("Project", "a-owner", "web"))
    assert [p["metadata"]["name"] for p in store.in_namespace("Project", "a-owner")] == ["api"]
    store.remove(("Project", "a-owner", "api"))
    assert list(store.in_namespace("Project", "a-owner")) == []
    assert len(list(store.in_namespace("KubeConfigRequest", "a-owner"))) == 1


def test_relist_finds_what_was_deleted_unseen() -> None:
    """Held but not listed any more: stale, unless created after the LIST began (the
    LIST may just not have seen it yet)."""
    store = Store()
    for name, created in (("old", "2026-11-25T10:00:00Z"), ("new", "2026-11-25T10:05:00Z")):
        store.upsert(
            {
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            }
        )
    store.upsert({"kind": "ConfigMap", "metadata": {"name": "old", "namespace": "ns"}})
    listed_at = datetime(2026, 11, 25, 10, 1, tzinfo=UTC)
    assert store.stale("RoleBinding", set(), listed_at) == [("RoleBinding", "ns", "old")]
    assert store.stale("RoleBinding", {("RoleBinding", "ns", "old")}, listed_at) == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(spec=JSON, labels=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=4))
def test_the_store_keeps_its_own_copy_of_what_it_is_given(
    spec: Any, labels: dict[str, str]
) -> None:
    """Whatever JSON a watch event or a write's answer carries, the store's copy equals
    it and does not move when the caller's dicts are changed afterwards (the store is
    read by every pass; a caller that edits its body must not edit the store)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "n", "labels": labels, "managedFields": [{}]},
        "data": {"spec": spec, "list": [spec, {"x": [spec]}]},
    }
    expected = copy.deepcopy(body)
    store = Store()
    store.upsert(body)
    held = store.get(("ConfigMap", "n", "c"))
    assert held is not None
    assert held["data"] == expected["data"]
    assert held["metadata"]["labels"] == labels
    assert "managedFields" not in held["metadata"]
    body["data"]["list"][1]["x"].append("edited")
    body["data"]["spec"] = "edited"
    body["metadata"]["labels"]["edited"] = "yes"
    assert held["data"] == expected["data"]
    assert held["metadata"]["labels"] == expected["metadata"]["labels"]


def test_the_store_holds_one_copy_of_each_repeated_string() -> None:
    """Each watch event is parsed on its own; the store keeps one copy of each key and
    short value all its children repeat (the memory of N = 500 tenants), and not of
    what is unique to each object."""

    def event(name: str) -> dict[str, Any]:
        text = json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": "n",
                    "uid": f"uid-{name}",
                    "labels": {"app.kubernetes.io/managed-by": "kubenova"},
                },
                "data": {"role": "owner", "pem": "x" * 200},
            }
        )
        return dict(json.loads(text))

    store = Store()
    store.upsert(event("a"))
    store.upsert(event("b"))
    a, b = store.get(("ConfigMap", "n", "a")), store.get(("ConfigMap", "n", "b"))
    assert a is not None and b is not None
    (key_a, value_a), (key_b, value_b) = (
        next(iter(o["metadata"]["labels"].items())) for o in (a, b)
    )
    assert key_a is key_b and value_a is value_b
    assert a["data"]["role"] is b["data"]["role"]
    assert a["data"]["pem"] == b["data"]["pem"]
