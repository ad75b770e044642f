"""Capsule and KubeVela: optional peers, detected through API discovery.

Kubenova works without them (guardrails are applied natively) and reports what it
sees in CapsuleSync / VelaSync; when one is installed later, discovery notices within
a resync period, without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    name: str
    api_version: str
    kind: str
    missing_reason: str

    def missing_message(self) -> str:
        return (
            f"{self.name} is not installed: the cluster does not serve {self.kind} "
            f"({self.api_version}). Kubenova's own guardrails apply; it syncs to "
            f"{self.name} once it is installed, without a restart."
        )


CAPSULE = Peer("Capsule", "capsule.clastix.io/v1beta2", "Tenant", "CapsuleNotInstalled")
KUBEVELA = Peer("KubeVela", "core.oam.dev/v1beta1", "Application", "KubeVelaNotInstalled")
