"""What every controller shares, set up once at operator start-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..kube.client import Kube
from .queue import TenantQueue


@dataclass
class Context:
    kube: Kube
    settings: Settings
    queue: TenantQueue
    vela_queue: TenantQueue  # VelaSyncs, keyed "<namespace>/<name>"
    # Whether the cluster serves KubeVela's kinds: checked at start-up and on every
    # VelaSync pass, so an installation is picked up without a restart.
    kubevela: bool = False
    shim: Any = None  # the aggregated API server, when it runs
    relister: asyncio.Task[None] | None = None  # controllers/children.py relist_forever


_context: Context | None = None


def set_context(ctx: Context | None) -> None:
    global _context  # noqa: PLW0603 - the one process-wide handle, set at start-up
    _context = ctx


def ctx() -> Context:
    if _context is None:
        raise RuntimeError("the operator is not started")
    return _context
