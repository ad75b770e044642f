"""From desired and observed objects to the writes that reconcile them (pure)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..resources import labels as L
from .diff import describe, differences, object_key
from .store import Key


@dataclass
class Changes:
    apply: list[dict[str, Any]] = field(default_factory=list)
    prune: list[tuple[str, Key]] = field(default_factory=list)  # (apiVersion, key)
    release: list[str] = field(default_factory=list)  # namespaces to let go of
    drifted: list[str] = field(default_factory=list)  # what differed, for people
    waiting: list[str] = field(default_factory=list)  # namespaces being deleted


def _namespace_of(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return str(meta.get("namespace") or meta["name"])


def digest(obj: Mapping[str, Any]) -> str:
    """A stable fingerprint of a desired object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def desired_digests(desired: list[dict[str, Any]]) -> dict[Key, str]:
    return {object_key(o): digest(o) for o in desired}


def plan_changes(
    desired: list[dict[str, Any]],
    observed: Mapping[Key, dict[str, Any]],
    *,
    drift_possible: bool,
    report_only: bool,
    admitted_projects: Collection[str],
    delete_namespaces_of: Collection[str],
    last_desired: Mapping[Key, str] | None = None,
) -> Changes:
    """What to write so that `observed` (a tenant's children) matches `desired`.

    - drift_possible: the parent was built at its current generation, so a difference
      is drift (reported in `drifted`); report_only: then it is not written.
    - last_desired: the digest of each object as the previous pass desired it; with it,
      only a difference in an object whose desired form did not change since is drift
      (a new credential's subjects in a RoleBinding are a change, not drift, even in a
      pass that also heals something).
    - Observed children that are no longer desired are pruned, except namespaces,
      which are released unless their project's policy is Delete, and except what
      belongs to a project that is not admitted (held or unknown): that is left alone.
    """
    changes = Changes()
    desired_keys = {object_key(o) for o in desired}
    changes.waiting = sorted(
        {
            _namespace_of(o)
            for o in desired
            if observed.get(("Namespace", "", _namespace_of(o)), {})
            .get("metadata", {})
            .get("deletionTimestamp")
        }
    )
    for obj in desired:
        if _namespace_of(obj) in changes.waiting:
            continue  # cannot take new content until the deletion ends
        key = object_key(obj)
        have = observed.get(key)
        diffs = ["missing"] if have is None else differences(obj, have)
        if not diffs:
            continue
        if drift_possible and (last_desired is None or last_desired.get(key) == digest(obj)):
            changes.drifted.append(f"{describe(key)} ({', '.join(diffs[:3])})")
            if report_only:
                continue
        changes.apply.append(obj)
    for key, have in sorted(observed.items()):
        if key in desired_keys or have["metadata"].get("deletionTimestamp"):
            continue
        project = have["metadata"].get("labels", {}).get(L.PROJECT)
        if project and project not in admitted_projects:
            continue
        if key[0] == "Namespace":
            if project and project in delete_namespaces_of:
                changes.prune.append(("v1", key))
            else:
                changes.release.append(key[2])
        elif not (drift_possible and report_only):
            changes.prune.append((have.get("apiVersion", "v1"), key))
    return changes
