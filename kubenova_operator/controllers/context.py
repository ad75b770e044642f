"""What every controller shares, set up once at operator start-up."""

from __future__ import annotations

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
    shim: Any = None  # the aggregated API server, when it runs


_context: Context | None = None


def set_context(ctx: Context | None) -> None:
    global _context  # noqa: PLW0603 - the one process-wide handle, set at start-up
    _context = ctx


def ctx() -> Context:
    if _context is None:
        raise RuntimeError("the operator is not started")
    return _context
