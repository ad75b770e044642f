"""The PromQL of manifests/monitoring (Grafana dashboard panels and variables, alerting
rules), parsed with a real PromQL parser, and checked against the metrics a scrape of
the operator holds: every metric a query selects must be in the scrape and every label
a query names must be one those metrics carry (or one Prometheus adds to each target).
Shared by the unit tests (names against the operator's registry) and the e2e test
(names and labels against a real scrape after activity)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser as pq
import yaml
from prometheus_client.parser import text_string_to_metric_families

MONITORING = Path(__file__).resolve().parents[1] / "manifests" / "monitoring"
DASHBOARD = MONITORING / "kubenova-dashboard.json"
RULES = MONITORING / "prometheusrule.yaml"
RULE_TESTS = MONITORING / "alerts-test.yaml"

# Labels Prometheus itself attaches to every scraped series (target labels; the
# Prometheus Operator's ServiceMonitor adds the Kubernetes ones) and series it makes
# per target rather than reading them from /metrics.
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
)
SYNTHETIC = {"up": TARGET_LABELS}
# What Grafana substitutes before a panel's query reaches Prometheus.
_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "$tenant": ".*",
}
_LABEL_VALUES = re.compile(r"^label_values\(\s*(?P<query>.+?)\s*,\s*(?P<label>\w+)\s*\)$")


@dataclass(frozen=True)
class Query:
    where: str  # "panel 'Reconcile rate' A", "alert KubenovaOperatorDown", ...
    expr: str


@dataclass
class Uses:
    """What one expression needs from the scrape."""

    selectors: dict[str, set[str]] = field(default_factory=dict)  # metric -> labels matched
    grouping: list[tuple[set[str], set[str]]] = field(default_factory=list)
    # (labels named in by/on/group_left/ignoring/without, metrics of that subtree)


def _grafana(expr: str) -> str:
    for variable, value in sorted(_GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + variable[1:] + "}", value).replace(variable, value)
    return expr


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def dashboard_queries() -> list[Query]:
    """Every panel target's expr and every query variable's query (label_values(m, l)
    becomes a selector of m naming l)."""
    board = dashboard()
    found = [
        Query(f"panel {panel['title']!r} {target['refId']}", _grafana(target["expr"]))
        for panel in _panels(board["panels"])
        for target in panel.get("targets") or []
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text)
        assert match, f"variable {variable['name']}: only label_values(metric, label) is used"
        found.append(
            Query(
                f"variable {variable['name']}",
                f"count by ({match['label']}) ({_grafana(match['query'])})",
            )
        )
    return found


def prometheus_rule() -> dict[str, Any]:
    return dict(yaml.safe_load(RULES.read_text()))


def rule_groups() -> dict[str, Any]:
    """The PrometheusRule's spec as a plain Prometheus rule file (what promtool reads)."""
    return {"groups": prometheus_rule()["spec"]["groups"]}


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups()["groups"] for rule in group["rules"]]


def rule_queries() -> list[Query]:
    return [Query(f"alert {rule['alert']}", rule["expr"]) for rule in alerting_rules()]


def all_queries() -> list[Query]:
    return dashboard_queries() + rule_queries()


def _names(labels: Any) -> set[str]:
    return set(labels.labels) if labels is not None else set()


def uses(expr: str) -> Uses:
    """Parse `expr` (raises ValueError when it is not PromQL) and collect its needs."""
    tree = pq.parse(expr)
    found = Uses()

    def metrics_under(node: Any) -> set[str]:
        names: set[str] = set()

        def visit(n: Any) -> None:
            if isinstance(n, pq.VectorSelector) and n.name:
                names.add(n.name)

        pq.walk(node, visit)
        return names

    def visit(node: Any) -> None:
        if isinstance(node, pq.VectorSelector):
            if not node.name:
                raise ValueError(f"a selector without a metric name in {expr!r}")
            labels = {m.name for m in node.matchers.matchers if m.name != "__name__"}
            found.selectors.setdefault(node.name, set()).update(labels)
        elif isinstance(node, pq.AggregateExpr) and node.modifier is not None:
            found.grouping.append((_names(node.modifier), metrics_under(node.expr)))
        elif isinstance(node, pq.BinaryExpr) and node.modifier is not None:
            named = _names(node.modifier.matching) | set(node.modifier.group_labels or [])
            if named:
                found.grouping.append((named, metrics_under(node.lhs) | metrics_under(node.rhs)))

    pq.walk(tree, visit)
    return found


def scrape_labels(text: str) -> dict[str, set[str]]:
    """Sample name -> the label names its samples carry, from Prometheus text format
    (prometheus-client's own parser)."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def problems(queries: list[Query], available: dict[str, set[str]]) -> list[str]:
    """What the queries select or name that `available` (sample name -> label names)
    does not have; empty when every query fits."""
    known = {**available, **{name: set(labels) for name, labels in SYNTHETIC.items()}}
    found: list[str] = []
    for query in queries:
        try:
            needs = uses(query.expr)
        except ValueError as exc:
            found.append(f"{query.where}: not PromQL: {exc}")
            continue
        for metric, labels in sorted(needs.selectors.items()):
            if metric not in known:
                found.append(f"{query.where}: no metric {metric} in the scrape")
                continue
            missing = labels - known[metric] - TARGET_LABELS
            if missing:
                found.append(f"{query.where}: {metric} has no label(s) {sorted(missing)}")
        for named, metrics in needs.grouping:
            carried = set(TARGET_LABELS).union(*(known.get(m, set()) for m in metrics))
            missing = named - carried
            if missing:
                found.append(
                    f"{query.where}: grouping by {sorted(missing)}, which none of "
                    f"{sorted(metrics)} carries"
                )
    return found
