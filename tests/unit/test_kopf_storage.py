"""kopf remembers nothing between events for Kubenova (controllers/wiring.py)."""

from __future__ import annotations

import copy
from typing import Any, cast

import kopf

from kubenova_operator.controllers.wiring import NoDiffBase, NoProgress, configure_kopf_storage


def _body() -> dict[str, Any]:
    return {
        "apiVersion": "kubenova.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "t", "annotations": {"kubenova.io/x": "y"}},
        "spec": {"owners": [{"kind": "User", "name": "alice"}]},
    }


def test_the_operator_configures_kopf_with_storages_that_keep_nothing() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf_storage(settings)
    assert isinstance(settings.persistence.diffbase_storage, NoDiffBase)
    assert isinstance(settings.persistence.progress_storage, NoProgress)


def test_no_essence_is_built_fetched_or_stored_and_nothing_is_patched() -> None:
    raw = _body()
    before = copy.deepcopy(raw)
    body = kopf.Body(cast(kopf.RawBody, raw))
    patch = kopf.Patch()
    diffbase, progress = NoDiffBase(), NoProgress()
    assert diffbase.fetch(body=body) is None
    essence = diffbase.build(body=body)
    assert essence == {}
    assert progress.clear(essence=essence) is essence  # no copy
    diffbase.store(body=body, patch=patch, essence=essence)
    progress.store(key=kopf.HandlerId("h"), record={}, body=body, patch=patch)
    progress.purge(key=kopf.HandlerId("h"), body=body, patch=patch)
    progress.touch(body=body, patch=patch, value="now")
    assert progress.fetch(key=kopf.HandlerId("h"), body=body) is None
    assert not patch  # nothing would be written on the object
    assert raw == before
