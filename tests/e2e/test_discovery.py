"""Whether a peer's kind is served, as the operator asks it (kube/client.py has_kind),
against the real API server: a burst of passes shares one discovery GET, and a kind
installed while the operator runs is seen within KIND_ANSWER_SECONDS."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.dynamic import DynamicClient

from kubenova_operator.kube.client import KIND_ANSWER_SECONDS, Kube

from .harness import Cluster, eventually

GROUP = "discovery.e2e.kubenova.io"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            }
        ],
    },
}


async def test_a_burst_shares_one_discovery_get_and_an_install_is_seen_within_the_window(
    cluster: Cluster, api: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = Kube(api, await DynamicClient(api))
    asked: list[str] = []
    real = client.CustomObjectsApi.get_api_resources

    async def counted(self: client.CustomObjectsApi, group: str, version: str) -> Any:
        asked.append(f"{group}/{version}")
        return await real(self, group, version)

    monkeypatch.setattr(client.CustomObjectsApi, "get_api_resources", counted)
    try:
        for _ in range(50):  # a burst of VelaSync or CapsuleSync passes
            assert not await kube.has_kind(f"{GROUP}/v1", "Widget")
        assert asked == [f"{GROUP}/v1"]

        cluster.apply(CRD)

        async def established() -> bool:
            crd = await client.ApiextensionsV1Api(api).read_custom_resource_definition(
                CRD["metadata"]["name"]
            )
            return any(
                c.type == "Established" and c.status == "True"
                for c in (crd.status.conditions or [])
            )

        await eventually(established, deadline=30, what="the CRD established")
        served_at = time.monotonic()

        async def seen() -> bool:
            return await kube.has_kind(f"{GROUP}/v1", "Widget")

        await eventually(seen, deadline=KIND_ANSWER_SECONDS + 15, what="the new kind seen")
        assert time.monotonic() - served_at <= KIND_ANSWER_SECONDS + 2
        assert not await kube.has_kind(f"{GROUP}/v1", "Gadget")  # another kind: its own answer
    finally:
        await client.ApiextensionsV1Api(api).delete_custom_resource_definition(
            CRD["metadata"]["name"]
        )
