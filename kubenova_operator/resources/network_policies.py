"""NetworkPolicies: a tenant's network isolation, per namespace.

- Tenant (default): ingress only from the tenant's own namespaces (selected by the
  kubenova.io/tenant label Kubenova sets and users cannot change); egress open.
- Strict: ingress only from the same namespace; egress only to the tenant's
  namespaces and to cluster DNS.
- None: no policies.
"""

from __future__ import annotations

from typing import Any

from ..api.tenant import NetworkIsolation
from ..kube.kinds import NETWORK_POLICY
from . import labels as L

TENANT_POLICY = "kubenova-tenant-isolation"
STRICT_POLICY = "kubenova-strict-isolation"
ALL_POLICY_NAMES = (TENANT_POLICY, STRICT_POLICY)


def _policy(
    name: str,
    namespace: str,
    spec: dict[str, Any],
    *,
    tenant: str,
    project: str | None,
    environment: str | None,
) -> dict[str, Any]:
    return {
        **NETWORK_POLICY.type_meta(),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": L.managed_labels(tenant, project, environment),
        },
        "spec": spec,
    }


def network_policies(
    namespace: str,
    mode: NetworkIsolation | str,
    *,
    tenant: str,
    project: str | None = None,
    environment: str | None = None,
) -> list[dict[str, Any]]:
    tenant_peer = {"namespaceSelector": {"matchLabels": {L.TENANT: tenant}}}
    if mode == NetworkIsolation.TENANT:
        spec = {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [tenant_peer]}],
        }
        return [
            _policy(
                TENANT_POLICY,
                namespace,
                spec,
                tenant=tenant,
                project=project,
                environment=environment,
            )
        ]
    if mode == NetworkIsolation.STRICT:
        dns = {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
        spec = {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [{"to": [tenant_peer]}, dns],
        }
        return [
            _policy(
                STRICT_POLICY,
                namespace,
                spec,
                tenant=tenant,
                project=project,
                environment=environment,
            )
        ]
    return []
