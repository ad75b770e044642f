"""An in-memory copy of the objects Kubenova manages, fed by kopf's watches.

Reconciles compare desired state with this copy instead of GETting each child, so a
periodic re-check of every tenant costs no API calls, and a steady state writes
nothing. It is the Python counterpart of controller-runtime's informer cache.
"""

from __future__ import annotations

import copy
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..api.common import now, parse_time
from ..resources import labels as L
from ..resources.ownership import NamespaceRecord

Key = tuple[str, str, str]  # (kind, namespace, name)

_intern = sys.intern

# What of a child is kept: enough to compare and to report, not managedFields.
_KEEP_META = (
    "name",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
    "uid",
    "deletionTimestamp",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "finalizers",
)


# Metadata that differs between objects: not worth interning.
_UNIQUE_META = frozenset({"uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"})
# Longer strings are rarely repeated (certificates, messages, last-applied JSON).
_INTERNED_LENGTH = 64


def _copy(value: Any) -> Any:
    """A copy of parsed JSON (dicts, lists, scalars): what copy.deepcopy does for it at a
    quarter of the cost (no memo, no dispatch). Every watch event and write answer is
    trimmed through here (docs/benchmarks.md).

    Keys and short strings are interned: each watch event is parsed on its own, so each
    stored child would otherwise hold its own copy of every key ("metadata",
    "app.kubernetes.io/managed-by") and of every repeated value (kinds, label values,
    role names, quantities), about two fifths of the store."""
    if type(value) is dict:
        return {_intern(k): _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    if type(value) is str and len(value) <= _INTERNED_LENGTH:
        return _intern(value)
    return value


def _trim(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata", {})
    out = {_intern(k): _copy(v) for k, v in body.items() if k != "metadata"}
    out["metadata"] = {
        _intern(k): meta[k] if k in _UNIQUE_META else _copy(meta[k])
        for k in _KEEP_META
        if k in meta
    }
    return out


def list_started() -> datetime:
    """When a relisting LIST starts, less a second for clock skew with the API server."""
    return now() - timedelta(seconds=1)


def created_before(obj: dict[str, Any], when: datetime) -> bool:
    created = parse_time(obj["metadata"].get("creationTimestamp"))
    return created is not None and created < when


def _older(new: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether `new` is an older version of what `current` holds under the same key.

    resourceVersions are opaque, but the API server's are etcd revisions: integers that
    grow across the whole store, so this also holds between a deleted object and the
    one re-created under its name (a late event about the old one must not replace the
    new one). Anything else compares as "not older".
    """
    try:
        return int(new["metadata"]["resourceVersion"]) < int(current["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return False


class Store:
    def __init__(self) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        self._by_tenant: dict[str, set[Key]] = defaultdict(set)
        # (kind, namespace) -> keys: a tenant's Projects and requests without scanning
        # every tenant's (a pass would otherwise cost O(tenants)).
        self._by_namespace: dict[tuple[str, str], set[Key]] = defaultdict(set)

    def upsert(self, body: dict[str, Any] | None) -> None:
        """Record an object as seen by a watch event or returned by a write (None: a
        write found the object gone; nothing to record).

        The applier records what the API server returned right away, so the next pass
        does not mistake a watch event still in flight for drift; an older version
        arriving later must then not overwrite it.
        """
        if body is None:
            return
        obj = _trim(body)
        key = (obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        current = self._objects.get(key)
        if current is not None and _older(obj, current):
            return
        self.remove(key)
        self._objects[key] = obj
        self._by_namespace[key[:2]].add(key)
        tenant = obj["metadata"].get("labels", {}).get(L.TENANT)
        if tenant:
            self._by_tenant[tenant].add(key)

    def remove(self, key: Key) -> None:
        old = self._objects.pop(key, None)
        if old is not None:
            held = self._by_namespace.get(key[:2])
            if held is not None:
                held.discard(key)
                if not held:
                    del self._by_namespace[key[:2]]
            tenant = old["metadata"].get("labels", {}).get(L.TENANT)
            if tenant:
                self._by_tenant[tenant].discard(key)

    def get(self, key: Key) -> dict[str, Any] | None:
        return self._objects.get(key)

    def holds(self, key: Key, body: dict[str, Any]) -> bool:
        """Whether the store already holds this version of the object, or a newer one:
        the watch event of a write whose answer was recorded (an echo), or a late one.
        Such an event tells a pass nothing new."""
        current = self._objects.get(key)
        if current is None or current["metadata"].get("uid") != body["metadata"].get("uid"):
            return False
        try:
            held = int(current["metadata"]["resourceVersion"])
            return held >= int(body["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            return False

    def of_tenant(self, tenant: str) -> Iterator[tuple[Key, dict[str, Any]]]:
        for key in sorted(self._by_tenant.get(tenant, ())):
            yield key, self._objects[key]

    def in_namespace(self, kind: str, namespace: str) -> Iterator[dict[str, Any]]:
        """The held objects of `kind` in `namespace`, by name."""
        for key in sorted(self._by_namespace.get((kind, namespace), ())):
            yield self._objects[key]

    def of_kind(self, kind: str) -> Iterator[dict[str, Any]]:
        for key, obj in self._objects.items():
            if key[0] == kind:
                yield obj

    def stale(self, kind: str, listed: set[Key], before: datetime) -> list[Key]:
        """Held objects of `kind` that a fresh LIST (`listed`) no longer has: deleted
        while no watch event could say so. Objects created after `before` (when the
        LIST started) are kept: it may simply not have seen them yet."""
        out = []
        for key, obj in self._objects.items():
            if key[0] != kind or key in listed:
                continue
            if created_before(obj, before):
                out.append(key)
        return sorted(out)

    def __len__(self) -> int:
        return len(self._objects)


Applications = defaultdict[str, dict[str, dict[str, Any]]]


@dataclass
class Stores:
    """Every in-memory copy the controllers share; one per operator, held by its
    Context (controllers/context.py)."""

    # Kubenova's own kinds (Tenants, Projects, KubeConfigRequests) and the children it
    # manages, keyed apart.
    parents: Store = field(default_factory=Store)
    children: Store = field(default_factory=Store)
    # Every namespace of the cluster -> what decides whose it is
    # (resources/ownership.py): a Tenant or Project never takes a namespace somebody
    # else already has.
    namespaces: dict[str, NamespaceRecord] = field(default_factory=dict)
    # KubeVela Applications in tenant namespaces as the watch last saw them (metadata
    # trimmed as above; of the spec only its policies, which may carry the revision
    # limit; the status whole): namespace -> name -> body.
    applications: Applications = field(default_factory=lambda: defaultdict(dict))
    # Per tenant, the digest of each child as its last pass desired it (kube/plan.py):
    # what tells a change of the spec from drift.
    last_desired: dict[str, dict[Key, str]] = field(default_factory=dict)

    def keep_application(self, body: dict[str, Any]) -> None:
        policies = (body.get("spec") or {}).get("policies")
        trimmed = _trim({k: v for k, v in body.items() if k != "spec"})
        if policies:
            trimmed["spec"] = {"policies": copy.deepcopy(policies)}
        meta = trimmed["metadata"]
        self.applications[meta["namespace"]][meta["name"]] = trimmed

    def drop_application(self, namespace: str, name: str) -> None:
        self.applications.get(namespace, {}).pop(name, None)
