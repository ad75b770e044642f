"""`kubectl kubenova`'s pure parts: what it prints, the request it makes, how it merges
kubeconfigs, how doctor judges what it reads, and which tenants rules reveal."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from kubenova_operator.cli import credentials as C
from kubenova_operator.cli import doctor as D
from kubenova_operator.cli import render as R
from kubenova_operator.cli.app import (
    application_since,
    kubectl_complete,
    log_prefix,
    tenants_in_rules,
)
from kubenova_operator.cli.kube import CliError, Denied, Permission

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def text(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def ready_cond(status: str = "True", reason: str = "Reconciled") -> dict[str, str]:
    return {"type": "Ready", "status": status, "reason": reason, "message": "m"}


TENANT = {
    "metadata": {"name": "acme"},
    "spec": {"displayName": "ACME", "budget": {"hard": {"requests.cpu": "4", "pods": "10"}}},
    "status": {
        "phase": "Ready",
        "namespaces": ["acme-owner", "acme-apps", "acme-shop-dev"],
        "conditions": [
            ready_cond(),
            {"type": "Drifted", "status": "True", "reason": "Healed", "message": "quota edited"},
        ],
    },
}
PROJECT = {
    "metadata": {"name": "shop"},
    "status": {
        "namespaces": ["acme-shop-dev"],
        "conditions": [ready_cond("False", "BudgetExceeded")],
    },
}
VELASYNC = {
    "status": {
        "applications": [
            {
                "name": "web",
                "namespace": "acme-shop-dev",
                "phase": "running",
                "healthy": True,
                "revision": "web-v3",
                "since": (NOW - timedelta(minutes=5)).isoformat(),
                "podSelector": "app.oam.dev/name=web",
            }
        ]
    }
}
USAGE = {
    "metadata": {"name": "acme"},
    "budget": {"requests.cpu": "4", "pods": "10"},
    "used": {"requests.cpu": "3800m", "pods": "2", "requests.memory": "1Gi"},
    "pods": 2,
    "namespaces": [{}],
    "projects": [],
}


def test_fraction_and_bar() -> None:
    assert R.fraction("500m", "2") == 0.25
    assert R.fraction(None, "2") == 0.0
    assert R.fraction("1", None) is None
    assert R.fraction("1", "0") is None
    assert R.fraction("1", "lots") is None
    assert text(R.bar(0.5, width=10)).strip() == "█████░░░░░"
    assert R.bar(0.95).style == "red"
    assert R.bar(0.8).style == "yellow"
    assert R.bar(0.1).style == "green"
    assert text(R.bar(None)).strip() == "no budget"
    assert text(R.bar(3.0, width=4)).strip() == "████"  # over budget: full, not longer


def test_age() -> None:
    assert R.age("2026-11-29T11:59:15Z", NOW) == "45s"
    assert R.age(NOW - timedelta(hours=3, minutes=5), NOW) == "3h"
    assert R.age(NOW - timedelta(days=2), NOW) == "2d"
    assert R.age(None, NOW) == "-"


def test_tenant_model_nests_projects_environments_apps() -> None:
    model = R.tenant_model(TENANT, [PROJECT], [VELASYNC], USAGE, ["live usage: x"])
    assert model["namespaces"] == ["acme-owner", "acme-apps"]  # the project's are nested
    (project,) = model["projects"]
    assert project["ready"] == "BudgetExceeded"
    (ns,) = project["namespaces"]
    assert ns["name"] == "acme-shop-dev" and ns["environment"] == "dev"
    assert ns["applications"][0]["revision"] == "web-v3"
    # Budgeted resources first, then used-only ones (no budget, no percentage).
    assert model["usage"] == [
        {"resource": "requests.cpu", "used": "3800m", "budget": "4", "percent": 95.0},
        {"resource": "pods", "used": "2", "budget": "10", "percent": 20.0},
        {"resource": "requests.memory", "used": "1Gi", "budget": None, "percent": None},
    ]


def test_tenant_model_without_usage_falls_back_to_the_tenant_status() -> None:
    tenant = {**TENANT, "status": {**TENANT["status"], "usage": {"pods": "5"}}}  # type: ignore[dict-item]
    model = R.tenant_model(tenant, [], [], None)
    assert {"resource": "pods", "used": "5", "budget": "10", "percent": 50.0} in model["usage"]


def test_tenant_tree() -> None:
    model = R.tenant_model(TENANT, [PROJECT], [VELASYNC], USAGE, ["live usage: denied"])
    out = text(R.tenant_tree(model, NOW))
    assert "tenant acme (ACME)  Ready" in out
    assert "requests.cpu" in out and "3800m/4 (95%)" in out
    assert "✖ Drifted=True (Healed): quota edited" in out  # negative polarity
    assert "✔ Ready=True (Reconciled)" in out
    assert "namespace acme-apps" in out
    assert "project shop  BudgetExceeded" in out
    assert "✖ Ready=False (BudgetExceeded): m" in out
    assert "env dev namespace acme-shop-dev" in out
    assert "app web  running  rev web-v3  healthy  5m" in out
    assert "note: live usage: denied" in out
    # Tree order: usage before conditions, projects last.
    assert out.index("usage vs budget") < out.index("conditions") < out.index("project shop")


def test_usage_highest_first() -> None:
    low = {**USAGE, "metadata": {"name": "low"}, "used": {"requests.cpu": "100m"}}
    none = {**USAGE, "metadata": {"name": "free"}, "budget": {}, "used": {}}
    model = R.usage_model([none, low, USAGE])
    assert [row["tenant"] for row in model] == ["acme", "low", "free"]
    assert model[0]["highestPercent"] == 95.0 and model[2]["highestPercent"] is None
    out = text(R.usage_table(model))
    assert out.index("acme") < out.index("low") < out.index("free")
    assert "95%" in out


def test_dump() -> None:
    assert R.dump([{"a": 1}], "json") == '[\n  {\n    "a": 1\n  }\n]'
    assert R.dump([{"a": 1}], "yaml") == "- a: 1\n"


def test_apps_table_and_since() -> None:
    app = {
        "metadata": {"creationTimestamp": "2026-11-29T10:00:00Z"},
        "status": {
            "conditions": [
                {"lastTransitionTime": "2026-11-29T11:00:00Z"},
                {"lastTransitionTime": "2026-11-29T11:30:00Z"},
            ]
        },
    }
    assert application_since(app) == "2026-11-29T11:30:00Z"
    assert application_since({"metadata": app["metadata"]}) == "2026-11-29T10:00:00Z"
    rows: list[dict[str, Any]] = [
        {"namespace": "n", "name": "a", "phase": "running", "revision": "a-v1", "healthy": True,
         "since": "2026-11-29T11:30:00Z", "message": None},
        {"namespace": "n", "name": "b", "phase": "workflowFailed", "revision": None,
         "healthy": False, "since": None, "message": "step deploy failed"},
    ]  # fmt: skip
    out = text(R.apps_table(rows, NOW))
    assert "a-v1" in out and "healthy" in out and "30m" in out
    assert "unhealthy" in out and "step deploy failed" in out


def test_kubectl_completion(capsys: pytest.CaptureFixture[str]) -> None:
    """kubectl's plugin completion protocol: one completion a line, then a directive."""
    assert kubectl_complete(["kubeconfig", "acme", "--role", ""]) == 0
    assert capsys.readouterr().out == "owner\nreadonly\ndeveloper\n:4\n"
    kubectl_complete(["ten"])
    assert capsys.readouterr().out == "tenants\ntenant\n:4\n"
    kubectl_complete(["keygen", "--private-key", ""])  # a path: the shell's files
    assert capsys.readouterr().out == ":0\n"


def test_log_prefix() -> None:
    assert log_prefix("web-1", "app", 1) == "[web-1] "
    assert log_prefix("web-1", "sidecar", 2) == "[web-1/sidecar] "


def test_tenants_in_rules() -> None:
    rules = [
        {"apiGroups": ["kubenova.io"], "resources": ["tenants"], "verbs": ["get"],
         "resourceNames": ["acme"]},
        {"apiGroups": ["api.kubenova.io"], "resources": ["tenantusages"], "verbs": ["get"],
         "resourceNames": ["other"]},
        {"apiGroups": ["kubenova.io"], "resources": ["projects"], "verbs": ["*"]},
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"], "resourceNames": ["x"]},
    ]  # fmt: skip
    assert tenants_in_rules(rules) == ["acme", "x"]


def test_denied_names_the_permission() -> None:
    denied = Denied(
        Permission("list", "tenants", "kubenova.io"),
        'tenants.kubenova.io is forbidden: User "bob" cannot list resource "tenants"',
    )
    assert str(denied) == (
        "forbidden: missing permission to list tenants.kubenova.io at the cluster scope "
        "(user 'bob'; check with `kubectl auth can-i list tenants.kubenova.io`)"
    )
    ns = Permission("get", "pods/log", namespace="acme-apps", name="web-1")
    assert ns.describe() == "get pods/log 'web-1' in namespace acme-apps"
    assert ns.can_i() == "kubectl auth can-i get pods/log/web-1 -n acme-apps"


# --- kubeconfig -----------------------------------------------------------------------


def test_parse_ttl() -> None:
    assert C.parse_ttl("3600") == 3600
    assert C.parse_ttl("90m") == 5400
    assert C.parse_ttl("1d12h") == 129600
    for bad in ("", "h", "1w", "-5"):
        with pytest.raises(CliError, match="--ttl"):
            C.parse_ttl(bad)


def test_request_body_and_reuse(tmp_path: Any) -> None:
    _, public = C.ensure_key(tmp_path)
    assert (tmp_path / C.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert C.ensure_key(tmp_path)[1] == public  # kept, not regenerated
    body = C.request_body("acme", "developer", "shop", public, 3600)
    name = body["metadata"]["name"]
    assert name == f"cli-developer-shop-{C.fingerprint(public)}" and len(name) <= 63
    assert body["metadata"]["namespace"] == "acme-owner"
    assert body["spec"]["delivery"] == {"mode": "Encrypted"}
    long = C.request_name("developer", "p" * 61, public)
    assert len(long) == 63 and long.endswith(C.fingerprint(public))

    # What the API server stores has defaults filled in: still the same request.
    stored = {
        "spec": {
            **body["spec"],
            "recipientPublicKey": public + "\n",
            "delivery": {"mode": "Encrypted", "secretKey": "kubeconfig"},
            "rotation": {"renewBeforePercent": 33},
            "revoked": False,
        }
    }
    assert C.spec_drift(stored, body) == {}
    assert C.spec_drift({"spec": {**stored["spec"], "ttlSeconds": 60}}, body) == {
        "spec": {"ttlSeconds": 3600}
    }
    assert C.spec_drift({"spec": {**stored["spec"], "revoked": True}}, body) == {
        "spec": {"revoked": False}
    }
    no_ttl = C.request_body("acme", "developer", "shop", public, None)
    assert C.spec_drift(stored, no_ttl) == {"spec": {"ttlSeconds": None}}


def kcr(generation: int, observed: int, **conds: tuple[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "kubeconfig": "hpke-...",
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": "why"}
                for t, (s, r) in conds.items()
            ],
        },
    }


def test_delivered() -> None:
    assert C.delivered(kcr(2, 2, Ready=("True", "Issued"))) == (True, None)
    # Ready at an older generation: the change (say a new TTL) is not served yet.
    assert C.delivered(kcr(3, 2, Ready=("True", "Issued"))) == (False, "Issued")
    with pytest.raises(CliError, match="stalled \\(ProjectNotFound\\): why"):
        C.delivered(kcr(1, 1, Ready=("False", "X"), Stalled=("True", "ProjectNotFound")))


OPERATOR_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "acme-developer", "cluster": {"server": "https://k"}}],
    "users": [{"name": "acme-developer", "user": {"token": "t"}}],
    "contexts": [
        {
            "name": "acme-developer",
            "context": {"cluster": "acme-developer", "user": "acme-developer", "namespace": "n"},
        }
    ],
    "current-context": "acme-developer",
}


def test_merge_and_remove() -> None:
    new = C.rename_context(OPERATOR_KUBECONFIG, "kubenova-acme-developer-shop")
    assert new["contexts"][0]["context"] == {
        "cluster": "kubenova-acme-developer-shop",
        "user": "kubenova-acme-developer-shop",
        "namespace": "n",
    }
    mine = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "prod", "cluster": {}}],
        "users": [{"name": "me", "user": {}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "me"}}],
        "current-context": "prod",
    }
    merged = C.merge(mine, new, use=False)
    assert merged["current-context"] == "prod"
    assert [c["name"] for c in merged["contexts"]] == ["prod", "kubenova-acme-developer-shop"]
    # Merging again replaces (no duplicates); --use switches.
    again = C.merge(merged, new, use=True)
    assert len(again["users"]) == 2 and again["current-context"] == new["current-context"]
    assert C.merge(None, new, use=False)["current-context"] == new["current-context"]
    removed, found = C.remove(again, "kubenova-acme-developer-shop")
    assert found and removed["current-context"] == ""
    assert [c["name"] for c in removed["contexts"]] == ["prod"]
    assert C.remove(removed, "kubenova-acme-developer-shop")[1] is False


# --- doctor ---------------------------------------------------------------------------


def test_doctor_judgements() -> None:
    crd = {
        "metadata": {"labels": {}},
        "spec": {"versions": [{"name": "v1alpha1", "served": True}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    }
    assert D.crd_check("tenants.kubenova.io", crd)["status"] == "ok"
    assert D.crd_check("tenants.kubenova.io", None)["fix"] == (
        "install the CRDs: kubectl apply -f crds/"
    )
    denied = Denied(Permission("get", "customresourcedefinitions", "apiextensions.k8s.io"))
    got = D.crd_check("tenants.kubenova.io", denied)
    assert got["status"] == "warn" and "customresourcedefinitions" in got["found"]

    def lease(renewed: datetime) -> dict[str, Any]:
        return {
            "spec": {
                "holderIdentity": "pod-a",
                "renewTime": renewed.isoformat(),
                "leaseDurationSeconds": 15,
            }
        }

    assert D.lease_check(lease(NOW - timedelta(seconds=3)), NOW)["status"] == "ok"
    stale = D.lease_check(lease(NOW - timedelta(minutes=5)), NOW)
    assert stale["status"] == "fail" and "not renewed for 300s" in stale["found"]
    assert D.lease_check(None, NOW)["status"] == "fail"

    unavailable = {
        "status": {
            "conditions": [
                {"type": "Available", "status": "False", "reason": "FailedDiscoveryCheck",
                 "message": "no route"}
            ]
        }
    }  # fmt: skip
    assert "FailedDiscoveryCheck" in D.apiservice_check(unavailable)["found"]
    assert D.peer_check("Capsule", None, "install it")["status"] == "warn"
    deployment = {
        "spec": {
            "replicas": 1,
            "template": {"spec": {"containers": [{"image": "ghcr.io/kubenova/operator:0.1.0",
                                                   "env": [{"name": "KUBENOVA_CAPSULE_PROXY_URL",
                                                            "value": "https://proxy:9001"}]}]}},
        },
        "status": {"readyReplicas": 1},
    }  # fmt: skip
    assert D.deployment_check(deployment)["found"] == "1/1 ready, version 0.1.0"
    assert D.proxy_check(None, deployment)["found"] == "kubeconfigs point at https://proxy:9001"
    assert D.proxy_check(None, None)["status"] == "warn"
    table = text(R.doctor_table([D.lease_check(None, NOW)]))
    assert "✖" in table and "start the operator" in table
