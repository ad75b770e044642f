"""What every controller shares, built once at operator start-up.

There is no module-global state: `__main__.configure` builds one Context and hands it
to kopf as `memo.context`; every kopf handler takes `memo` and calls `context_of(memo)`,
and everything below the handlers takes the Context as its first parameter. The queues'
work functions have it bound when the queues are built.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import kopf

from ..config import Settings
from ..kube.client import Kube
from ..kube.store import Stores
from .queue import TenantQueue
from .scheduler import Scheduler

if TYPE_CHECKING:
    from ..shim.server import Shim


@dataclass
class CredentialState:
    """The KubeConfigRequest controller's bookkeeping (controllers/kubeconfigrequest.py)."""

    # One lock per request (namespace, name): a reconcile and a rotation never overlap.
    locks: defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    # When each request's current token expires: the soonest is exported as a metric.
    expiries: dict[tuple[str, str], datetime] = field(default_factory=dict)


@dataclass
class VelaState:
    """The VelaSync controller's bookkeeping (controllers/velasync.py)."""

    # (revision number, limit) each Application's revisions were last checked at.
    checked: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    # The phases last exported per VelaSync, so a phase that empties is reset to 0.
    exported: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class CapsuleState:
    """The CapsuleSync controller's bookkeeping (controllers/capsulesync.py)."""

    # Whether the cluster serves Capsule's Tenant kind (discovery on every resync).
    installed: bool = False
    # Kubenova's Capsule Tenants as their watch last saw them (or a write returned).
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The desired Capsule Tenant each was last written from: a difference from the
    # live one while this still holds is drift; a new desired state is a change.
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Namespaces run through Capsule's webhook for adoption, and when (monotonic).
    adopted: dict[str, float] = field(default_factory=dict)
    # The CapsuleConfiguration, from its watch (None: read it when needed).
    configuration: dict[str, Any] | None = None


@dataclass
class Context:
    kube: Kube
    settings: Settings
    queue: TenantQueue
    vela_queue: TenantQueue  # VelaSyncs, keyed "<namespace>/<name>"
    capsule_queue: TenantQueue  # CapsuleSyncs, keyed by name (= the tenant's)
    # Whether the cluster serves KubeVela's kinds: checked at start-up and on every
    # VelaSync pass, so an installation is picked up without a restart.
    kubevela: bool = False
    # Set while this replica holds the leader Lease (at once without leader election).
    # Every replica watches and keeps its stores (and serves the aggregated API from
    # them); only the leader's passes run and write (controllers/wiring.py, __main__).
    leading: asyncio.Event = field(default_factory=asyncio.Event)
    # The Tenant CRD is being deleted: Tenants and Projects are let go without
    # teardown (controllers/uninstall.py).
    uninstalling: bool = False
    uninstall_began: float = 0.0  # (time.monotonic())
    # Whether the operator's own access carries the uninstall hold (None: not known yet).
    access_held: bool | None = None
    hold_retry_at: float = 0.0  # (time.monotonic()) when a failed hold may be tried again
    shim: Shim | None = None  # the aggregated API server, when it runs
    # The one clock: resyncs, relists, stuck-Application deadlines (controllers/scheduler.py).
    scheduler: Scheduler = field(default_factory=Scheduler)
    # The level-triggered kinds (controllers/wiring.py): one queue per controller, and
    # the objects their watches saw, by controller and "<namespace>/<name>".
    passes: dict[str, TenantQueue] = field(default_factory=dict)
    watched: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    stores: Stores = field(default_factory=Stores)  # kube/store.py: what the watches saw
    credentials: CredentialState = field(default_factory=CredentialState)
    vela: VelaState = field(default_factory=VelaState)
    capsule: CapsuleState = field(default_factory=CapsuleState)
    # Not here: the metrics' own bookkeeping (observability/metrics.py), which shadows
    # Prometheus' process-wide registry and so is process-wide like it.


def context_of(memo: kopf.Memo) -> Context:
    """The operator's Context, as `__main__.configure` put it in kopf's memo."""
    context = getattr(memo, "context", None)
    if not isinstance(context, Context):
        raise RuntimeError("the operator is not started (no Context in kopf's memo)")
    return context
