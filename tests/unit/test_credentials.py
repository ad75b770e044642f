from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubenova_operator import cli
from kubenova_operator.api.project import ProjectSpec
from kubenova_operator.api.tenant import TenantSpec
from kubenova_operator.credentials.kubeconfig import render_kubeconfig
from kubenova_operator.credentials.rotation import issue_reason, renew_at
from kubenova_operator.credentials.sealing import (
    InvalidPublicKey,
    generate_keypair,
    load_public_key,
    open_sealed,
    seal,
)
from kubenova_operator.resources.credentials import request_identities
from kubenova_operator.resources.project import project_children
from kubenova_operator.resources.tenant import tenant_children

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_seal_round_trip_and_tamper_detection() -> None:
    private, public = generate_keypair()
    sealed = seal(b"apiVersion: v1", public)
    assert b"apiVersion" not in sealed.encode()
    assert open_sealed(sealed, private) == b"apiVersion: v1"
    other, _ = generate_keypair()
    with pytest.raises(Exception):  # noqa: B017 - any failure: wrong key
        open_sealed(sealed, other)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(Exception):  # noqa: B017
        open_sealed(tampered, private)


def test_only_x25519_public_keys() -> None:
    with pytest.raises(InvalidPublicKey, match="not a PEM public key"):
        load_public_key("hello")
    ec_pub = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(InvalidPublicKey, match="is a EC key; an X25519 key is required"):
        load_public_key(ec_pub)


def test_cli_keygen_and_decrypt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "me.key"
    assert cli.main(["keygen", "--private-key", str(key)]) == 0
    public = capsys.readouterr().out
    assert key.stat().st_mode & 0o777 == 0o600
    assert cli.main(["keygen", "--private-key", str(key)]) == 1  # never overwrites
    monkeypatch.setattr("sys.stdin", io.StringIO(seal(b"kind: Config\n", public) + "\n"))
    capsys.readouterr()
    assert cli.main(["decrypt", "--private-key", str(key)]) == 0
    assert capsys.readouterr().out == "kind: Config\n"


def test_rotation_points() -> None:
    issued, expires = T0, T0 + timedelta(hours=3)
    assert renew_at(issued, expires, 33) == expires - timedelta(minutes=59, seconds=24)
    assert (
        issue_reason(
            issued=None, expires=None, generation_seen=True, renew_before_percent=33, now=T0
        )
        == "initial"
    )

    def reason(seen: bool, at: datetime) -> str | None:
        return issue_reason(
            issued=issued, expires=expires, renew_before_percent=50, generation_seen=seen, now=at
        )

    assert reason(False, T0) == "spec"
    assert reason(True, T0 + timedelta(hours=1)) is None
    assert reason(True, T0 + timedelta(hours=1, minutes=30)) == "rotation"


def test_kubeconfig_shape() -> None:
    text = render_kubeconfig(
        name="acme-owner",
        server="https://proxy:9001",
        ca_pem=b"CA",
        token="t0k3n",
        namespace="acme-apps",
    )
    cfg = yaml.safe_load(text)
    assert cfg["current-context"] == "acme-owner"
    assert cfg["clusters"][0]["cluster"] == {
        "server": "https://proxy:9001",
        "certificate-authority-data": "Q0E=",
    }
    assert cfg["users"][0]["user"] == {"token": "t0k3n"}
    assert cfg["contexts"][0]["context"]["namespace"] == "acme-apps"


def _request(name: str, role: str, **spec: object) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "acme-owner", "uid": f"uid-{name}"},
        "spec": {"role": role, **spec},
    }


def test_each_live_request_is_bound_as_its_own_identity_where_its_role_reaches() -> None:

    requests = [
        _request("laptop", "owner"),
        _request("audit", "readonly"),
        _request("ci", "developer", project="shop"),
        _request("old", "owner", revoked=True),
        {
            **_request("gone", "owner"),
            "metadata": {
                "name": "gone",
                "namespace": "acme-owner",
                "deletionTimestamp": "2026-01-01T00:00:00Z",
            },
        },
        {**_request("elsewhere", "owner"), "metadata": {"name": "x", "namespace": "other-owner"}},
    ]
    ids = request_identities("acme", requests)
    sa = {"kind": "ServiceAccount", "namespace": "acme-owner"}
    assert ids.owners == [{**sa, "name": "kcr-laptop"}]
    assert ids.readers == [{**sa, "name": "kcr-audit"}]
    assert ids.developers == {"shop": [{**sa, "name": "kcr-ci"}]}
    # Only live requests have an identity to build, each owned by its request.
    built = {o["metadata"]["name"]: o for o in ids.service_accounts}
    assert set(built) == {"kcr-laptop", "kcr-audit", "kcr-ci"}
    assert built["kcr-ci"]["metadata"]["ownerReferences"][0]["uid"] == "uid-ci"
    assert built["kcr-ci"]["metadata"]["labels"]["kubenova.io/credential-role"] == "developer"

    objs = tenant_children("acme", "uid", TenantSpec(), {}, identities=ids)
    owner_binding = next(
        o
        for o in objs
        if o["kind"] == "RoleBinding"
        and o["metadata"]["namespace"] == "acme-apps"
        and o["metadata"]["name"] == "kubenova:tenant-owner"
    )
    names = {s["name"] for s in owner_binding["subjects"]}
    assert "kcr-laptop" in names and "kcr-old" not in names and "kcr-gone" not in names
    assert "kcr-audit" not in names  # a readonly identity is not an owner
    shop = project_children("shop", "acme", "uid", TenantSpec(), ProjectSpec(), identities=ids)
    app_users = next(
        o
        for o in shop
        if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "kubenova:app-user"
    )
    assert {"kind": "ServiceAccount", "name": "kcr-ci", "namespace": "acme-owner"} in (
        app_users["subjects"]
    )
