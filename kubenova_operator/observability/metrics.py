"""Prometheus metrics.

The controller_runtime_* and workqueue_* names are controller-runtime's, so dashboards
and alerts written for Go operators work unchanged; kubenova_* series are our own.
Label values are bounded: controller names, results, phases and kinds, never object
names.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    "Children found different from their desired state, by tenant, kind and action.",
    ["tenant", "kind", "action"],
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


CREDENTIAL_EXPIRY_TIME = Gauge(
    "kubenova_credential_expiry_timestamp_seconds",
    "Unix time at which the tenant's earliest-expiring issued credential expires.",
    ["tenant"],
)
CREDENTIAL_ROTATION_TIME = Gauge(
    "kubenova_credential_rotation_timestamp_seconds",
    "Unix time at which the tenant's next credential rotation is due (the earliest over "
    "its issued credentials): well past it means rotation is not happening.",
    ["tenant"],
)


_credential_times: set[tuple[str, str]] = set()  # (which, tenant) that have a series


def set_credential_times(tenant: str, expiry: float | None, rotation: float | None) -> None:
    """The tenant's earliest expiry and rotation times (None: no such credential)."""
    for which, gauge, value in (
        ("expiry", CREDENTIAL_EXPIRY_TIME, expiry),
        ("rotation", CREDENTIAL_ROTATION_TIME, rotation),
    ):
        key = (which, tenant)
        if value is not None:
            gauge.labels(tenant).set(value)
            _credential_times.add(key)
        elif key in _credential_times:
            gauge.remove(tenant)
            _credential_times.discard(key)


TENANT_BUDGET = Gauge(
    "kubenova_tenant_budget",
    "The tenant's budget (spec.budget.hard) by ResourceQuota resource name, in base units "
    "(cores, bytes, objects).",
    ["tenant", "resource"],
)
TENANT_USAGE = Gauge(
    "kubenova_tenant_usage",
    "What the tenant's namespaces use (their ResourceQuotas' status.used summed) by "
    "resource name, in base units.",
    ["tenant", "resource"],
)
# Process-wide like _phases above (they shadow the registry's series).
_tenant_resources: dict[str, tuple[set[str], set[str]]] = {}
_drift_series: dict[str, set[tuple[str, str]]] = {}


def set_tenant_usage(tenant: str, budget: Mapping[str, float], usage: Mapping[str, float]) -> None:
    """Replace the tenant's budget and usage series (resources that went, go)."""
    old_budget, old_usage = _tenant_resources.pop(tenant, (set(), set()))
    for gauge, old, new in ((TENANT_BUDGET, old_budget, budget), (TENANT_USAGE, old_usage, usage)):
        for resource in old - set(new):
            gauge.remove(tenant, resource)
        for resource, value in new.items():
            gauge.labels(tenant, resource).set(value)
    if budget or usage:
        _tenant_resources[tenant] = (set(budget), set(usage))


def count_drift(tenant: str, kind: str, action: str) -> None:
    """One child found drifted (action: healed or reported)."""
    DRIFT_CORRECTIONS.labels(tenant, kind, action).inc()
    _drift_series.setdefault(tenant, set()).add((kind, action))


def forget_tenant(tenant: str) -> None:
    """Drop a deleted tenant's series, so label values stay bounded by live tenants."""
    set_tenant_usage(tenant, {}, {})
    set_credential_times(tenant, None, None)
    for kind, action in _drift_series.pop(tenant, set()):
        DRIFT_CORRECTIONS.remove(tenant, kind, action)


LEADER = Gauge("kubenova_leader", "1 while this replica holds the leader Lease.")


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve /metrics from a background thread (prometheus-client's own server)."""
    start_http_server(port, addr=address)
