"""`kubectl kubenova kubeconfig`: the user's key, the KubeConfigRequest the plugin
creates or reuses, and merging the decrypted kubeconfig into the user's file. Pure but
for the key file helpers."""

from __future__ import annotations

import copy
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from ..api.tenant import owner_namespace
from ..credentials.sealing import generate_keypair
from .kube import GROUP, VERSION, CliError

KEY_FILE = "kubeconfig-key.pem"
PUBLIC_FILE = "kubeconfig-key.pub"
_TTL = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/kubenova (~/.config/kubenova), where the private key lives."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kubenova"


def write_private_key(path: Path) -> str:
    """A new X25519 key pair: the private key to `path` (0600, never overwritten),
    the public key returned (PEM)."""
    private, public = generate_keypair()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{path} exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as out:
        out.write(private)
    return public


def ensure_key(directory: Path) -> tuple[bytes, str]:
    """The user's key pair in `directory`, made on first use: (private PEM, public PEM)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = directory / KEY_FILE
    if not key.exists():
        write_private_key(key)
    private = key.read_bytes()
    loaded = serialization.load_pem_private_key(private, password=None)
    public = loaded.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def fingerprint(public_pem: str) -> str:
    return hashlib.sha256(public_pem.strip().encode()).hexdigest()[:8]


def parse_ttl(value: str) -> int:
    """`3600`, `90m`, `8h`, `1d12h` -> seconds."""
    match = _TTL.match(value.strip())
    if not value.strip() or not match or not any(match.groups()):
        raise CliError(f"--ttl {value!r}: use seconds or a duration like 30m, 8h, 1d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def request_name(role: str, project: str | None, public_pem: str) -> str:
    """One request per (role, project, key): reused by the same user, never shared
    with another key. At most 63 characters."""
    middle = f"{role}-{project}" if project else role
    return f"cli-{middle}"[: 63 - 9] + f"-{fingerprint(public_pem)}"


def context_name(tenant: str, role: str, project: str | None) -> str:
    return f"kubenova-{tenant}-{role}" + (f"-{project}" if project else "")


def request_body(
    tenant: str, role: str, project: str | None, public_pem: str, ttl: int | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "role": role,
        "delivery": {"mode": "Encrypted"},
        "recipientPublicKey": public_pem,
    }
    if project:
        spec["project"] = project
    if ttl:
        spec["ttlSeconds"] = ttl
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KubeConfigRequest",
        "metadata": {
            "name": request_name(role, project, public_pem),
            "namespace": owner_namespace(tenant),
            "labels": {"app.kubernetes.io/created-by": "kubectl-kubenova"},
        },
        "spec": spec,
    }


def spec_drift(existing: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that makes an existing request what we want (empty: reuse it).
    Only what the plugin sets is compared: the API server fills in defaults."""
    have, want = existing.get("spec") or {}, wanted["spec"]
    patch: dict[str, Any] = {}
    for key, value in want.items():
        if key == "delivery":
            if (have.get("delivery") or {}).get("mode") != value["mode"]:
                patch["delivery"] = {"mode": value["mode"]}
        elif key == "recipientPublicKey":
            if str(have.get(key) or "").strip() != value.strip():
                patch[key] = value
        elif have.get(key) != value:
            patch[key] = value
    if have.get("ttlSeconds") is not None and "ttlSeconds" not in want:
        patch["ttlSeconds"] = None
    if have.get("revoked"):
        patch["revoked"] = False
    return {"spec": patch} if patch else {}


def delivered(obj: dict[str, Any]) -> tuple[bool, str | None]:
    """(done, why not): the sealed kubeconfig is there and the request is Ready at its
    generation; a Stalled request says why it never will be."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if (
        ready.get("status") == "True"
        and status.get("observedGeneration") == generation
        and status.get("kubeconfig")
    ):
        return True, None
    stalled = conditions.get("Stalled") or {}
    if stalled.get("status") == "True" and status.get("observedGeneration") == generation:
        raise CliError(
            f"the KubeConfigRequest is stalled ({stalled.get('reason')}): {stalled.get('message')}"
        )
    return False, ready.get("reason") or "waiting for the operator"


def rename_context(kubeconfig: dict[str, Any], name: str) -> dict[str, Any]:
    """The operator's kubeconfig (one cluster, user, context) under `name` everywhere."""
    out = copy.deepcopy(kubeconfig)
    for key in ("clusters", "users"):
        for item in out.get(key) or []:
            item["name"] = name
    for item in out.get("contexts") or []:
        item["name"] = name
        item["context"]["cluster"] = name
        item["context"]["user"] = name
    out["current-context"] = name
    return out


def merge(existing: dict[str, Any] | None, new: dict[str, Any], *, use: bool) -> dict[str, Any]:
    """`new`'s entries added to (or replacing same-named ones in) `existing`; the
    current context switched only when `use`."""
    out: dict[str, Any] = (
        copy.deepcopy(existing) if existing else {"apiVersion": "v1", "kind": "Config"}
    )
    for key in ("clusters", "users", "contexts"):
        names = {item["name"] for item in new.get(key) or []}
        kept = [item for item in out.get(key) or [] if item.get("name") not in names]
        out[key] = kept + copy.deepcopy(new.get(key) or [])
    if use or not out.get("current-context"):
        out["current-context"] = new["current-context"]
    out.setdefault("preferences", {})
    return out


def remove(existing: dict[str, Any], name: str) -> tuple[dict[str, Any], bool]:
    """`existing` without the cluster, user and context `name`; whether any was there."""
    out = copy.deepcopy(existing)
    found = False
    for key in ("clusters", "users", "contexts"):
        before = out.get(key) or []
        out[key] = [item for item in before if item.get("name") != name]
        found = found or len(out[key]) != len(before)
    if out.get("current-context") == name:
        out["current-context"] = ""
    return out, found
