"""Prometheus metrics.

The controller_runtime_* and workqueue_* names are controller-runtime's, so dashboards
and alerts written for Go operators work unchanged; kubenova_* series are our own.
Label values are bounded: controller names, results, phases and kinds, never object
names.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller.",
    ["controller", "result"],
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller.",
    ["controller"],
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller.",
    ["controller"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers",
    "Number of currently used workers per controller.",
    ["controller"],
)
WORKQUEUE_DEPTH = Gauge(
    "workqueue_depth",
    "Reconciles started and not yet finished, per controller (kopf keeps one queue per "
    "object; this is the sum of what is in flight).",
    ["name"],
)
DRIFT_CORRECTIONS = Counter(
    "kubenova_drift_corrections_total",
    "Children found different from their desired state, by kind and action.",
    ["kind", "action"],
)
OBJECTS_BY_PHASE = Gauge(
    "kubenova_objects",
    "Kubenova objects by kind and phase.",
    ["kind", "phase"],
)
# Module-global on purpose, unlike the controllers' state (controllers/context.py):
# this shadows series of Prometheus' own process-wide registry, so it lives as long
# as they do.
_phases: dict[tuple[str, str], str] = {}


def record_phase(kind: str, name: str, phase: str | None) -> None:
    """Track one object's phase (None: it is gone) in kubenova_objects{kind,phase}."""
    old = _phases.pop((kind, name), None)
    if old is not None:
        OBJECTS_BY_PHASE.labels(kind, old).dec()
    if phase is not None:
        _phases[(kind, name)] = phase
        OBJECTS_BY_PHASE.labels(kind, phase).inc()


APPLICATIONS_BY_PHASE = Gauge(
    "kubenova_applications",
    "KubeVela Applications in a project's namespaces, by phase (status.status).",
    ["namespace", "project", "phase"],
)
TOKENS_ISSUED = Counter(
    "kubenova_tokens_issued_total", "Tokens issued, by role and reason.", ["role", "reason"]
)
TOKENS_REVOKED = Counter("kubenova_tokens_revoked_total", "Requests revoked.", ["role"])
CREDENTIAL_EXPIRY = Gauge(
    "kubenova_credential_seconds_to_expiry",
    "Seconds until the earliest issued credential expires.",
)
REVOCATION_SECONDS = Histogram(
    "kubenova_revocation_seconds",
    "From the operator seeing a KubeConfigRequest revoked to its identity's bindings "
    "being gone (its next API request is refused from then on).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
CREDENTIALS = Gauge(
    "kubenova_credentials",
    "KubeConfigRequests by tenant, role and state (the reason of their Ready condition).",
    ["tenant", "role", "state"],
)
# Process-wide like _phases above (it shadows the registry's series).
_credential_series: dict[str, set[tuple[str, str]]] = {}


def set_credentials(tenant: str, counts: dict[tuple[str, str], int]) -> None:
    """Replace the tenant's kubenova_credentials series (series that emptied go)."""
    for role, state in _credential_series.pop(tenant, set()) - set(counts):
        CREDENTIALS.remove(tenant, role, state)
    for (role, state), value in counts.items():
        CREDENTIALS.labels(tenant, role, state).set(value)
    if counts:
        _credential_series[tenant] = set(counts)


LEADER = Gauge("kubenova_leader", "1 while this replica holds the leader Lease.")


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve /metrics from a background thread (prometheus-client's own server)."""
    start_http_server(port, addr=address)
