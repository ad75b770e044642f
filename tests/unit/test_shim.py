from __future__ import annotations

import pytest
from multidict import CIMultiDict

from kubenova_operator.shim.auth import RequestHeaderConfig, Unauthenticated, authenticate
from kubenova_operator.shim.objects import tenant_usage, usage_table, wants_table

CONFIG = RequestHeaderConfig(
    client_ca="",
    allowed_names=("front-proxy-client",),
    username_headers=("X-Remote-User",),
    group_headers=("X-Remote-Group",),
    extra_prefixes=("X-Remote-Extra-",),
)
PROXY = {"subject": ((("commonName", "front-proxy-client"),),)}


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


def test_headers_count_only_behind_the_proxy_certificate() -> None:
    forged = headers(("X-Remote-User", "system:admin"), ("X-Remote-Group", "system:masters"))
    with pytest.raises(Unauthenticated, match="client certificate"):
        authenticate(CONFIG, {}, forged)
    with pytest.raises(Unauthenticated, match="not an allowed proxy"):
        authenticate(CONFIG, {"subject": ((("commonName", "someone"),),)}, forged)
    with pytest.raises(Unauthenticated, match="no user"):
        authenticate(CONFIG, PROXY, headers())


def test_user_groups_and_extra() -> None:
    user = authenticate(
        CONFIG,
        PROXY,
        headers(
            ("X-Remote-User", "alice"),
            ("X-Remote-Group", "a"),
            ("X-Remote-Group", "b"),
            ("X-Remote-Extra-Scopes", "s1"),
            ("X-Remote-Extra-Scopes", "s2"),
        ),
    )
    assert user.name == "alice" and user.groups == ("a", "b")
    assert user.extra == (("scopes", ("s1", "s2")),)


def test_tenant_usage_sums_per_project_and_namespace() -> None:
    tenant = {
        "metadata": {"name": "acme", "creationTimestamp": "t"},
        "spec": {"budget": {"hard": {"requests.cpu": "4"}}},
    }

    def quota(ns: str, cpu: str, project: str | None = None) -> dict[str, object]:
        labels = {"kubenova.io/project": project} if project else {}
        return {
            "metadata": {"namespace": ns, "labels": labels},
            "status": {"hard": {"requests.cpu": "2"}, "used": {"requests.cpu": cpu}},
        }

    usage = tenant_usage(
        tenant,
        [
            quota("acme-apps", "500m"),
            quota("acme-web-dev", "1", "web"),
            quota("acme-web-prod", "250m", "web"),
        ],
        {"acme-apps": 2, "acme-web-dev": 1},
    )
    assert usage["used"] == {"requests.cpu": "1750m"}
    assert usage["pods"] == 3
    assert usage["projects"] == [
        {
            "name": "web",
            "used": {"requests.cpu": "1250m"},
            "namespaces": ["acme-web-dev", "acme-web-prod"],
        }
    ]
    row = usage_table([usage])["rows"][0]["cells"]
    assert row[:4] == ["acme", "1750m/4", "-", 3]


def test_table_negotiation() -> None:
    assert wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not wants_table("application/json")
