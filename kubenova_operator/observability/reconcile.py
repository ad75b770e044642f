"""The one wrapper every kopf handler goes through.

It records controller-runtime's reconcile metrics and opens an OpenTelemetry span, so
every controller is measured the same way and a handler body holds only its logic.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import kopf
from opentelemetry.trace import Status, StatusCode

from .metrics import (
    ACTIVE_WORKERS,
    RECONCILE_ERRORS,
    RECONCILE_TIME,
    RECONCILE_TOTAL,
    WORKQUEUE_DEPTH,
)
from .tracing import tracer

P = ParamSpec("P")
R = TypeVar("R")


def reconciler(controller: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate an async kopf handler of `controller` (e.g. "tenant")."""

    # Series from zero at start-up, as controller-runtime does: rate() and the alerts on
    # errors see the first error as an increase, and dashboards show 0, not "no data".
    RECONCILE_ERRORS.labels(controller)
    for result in ("success", "requeue", "error"):
        RECONCILE_TOTAL.labels(controller, result)

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            attributes: dict[str, Any] = {"kubenova.controller": controller}
            if isinstance(kwargs.get("name"), str):
                attributes["k8s.object.name"] = kwargs["name"]
            if isinstance(kwargs.get("namespace"), str):
                attributes["k8s.namespace.name"] = kwargs["namespace"]
            WORKQUEUE_DEPTH.labels(controller).inc()
            ACTIVE_WORKERS.labels(controller).inc()
            started = time.perf_counter()
            result = "success"
            with tracer().start_as_current_span(
                f"reconcile {controller}", attributes=attributes
            ) as span:
                try:
                    return await fn(*args, **kwargs)
                except (kopf.TemporaryError, kopf.PermanentError) as exc:
                    # Expected outcomes (waiting for something, bad input): a requeue
                    # or a reported failure, not an error of the operator.
                    result = "requeue" if isinstance(exc, kopf.TemporaryError) else "error"
                    if result == "error":
                        RECONCILE_ERRORS.labels(controller).inc()
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    raise
                except Exception as exc:
                    result = "error"
                    RECONCILE_ERRORS.labels(controller).inc()
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    raise
                finally:
                    RECONCILE_TIME.labels(controller).observe(time.perf_counter() - started)
                    RECONCILE_TOTAL.labels(controller, result).inc()
                    ACTIVE_WORKERS.labels(controller).dec()
                    WORKQUEUE_DEPTH.labels(controller).dec()

        return wrapper

    return decorate
