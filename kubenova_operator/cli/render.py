"""What the plugin prints, as pure functions of API objects: models (for -o json|yaml)
and rich renderables (trees, tables, bars). No I/O here; tests/unit/test_cli.py."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import yaml
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..api.common import parse_time
from ..resources.quantity import QuantityError, parse_quantity

BAR_WIDTH = 20
WARN_AT, CRITICAL_AT = 0.75, 0.9
OUTPUTS = ("table", "json", "yaml")


# --- generic ------------------------------------------------------------------------


def dump(data: Any, output: str) -> str:
    """`-o json` / `-o yaml`: stable, machine-readable, what the models return."""
    if output == "json":
        return json.dumps(data, indent=2, sort_keys=False, default=str)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def age(since: str | datetime | None, now: datetime) -> str:
    """kubectl's short age: 45s, 12m, 3h, 5d."""
    at = parse_time(since) if isinstance(since, str) else since
    if at is None:
        return "-"
    seconds = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def fraction(used: str | None, budget: str | None) -> float | None:
    """used / budget, None when there is no (positive, parseable) budget."""
    if budget is None:
        return None
    try:
        total = parse_quantity(budget)
        spent = parse_quantity(used) if used is not None else Decimal(0)
    except QuantityError:
        return None
    if total <= 0:
        return None
    return float(spent / total)


def bar(share: float | None, width: int = BAR_WIDTH) -> Text:
    """A usage bar: green, yellow from 75%, red from 90%."""
    if share is None:
        return Text("no budget", style="dim")
    filled = min(width, round(share * width))
    style = "red" if share >= CRITICAL_AT else "yellow" if share >= WARN_AT else "green"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    return text


def usage_lines(budget: Mapping[str, str], used: Mapping[str, str]) -> list[dict[str, Any]]:
    """One line per budgeted (or used) resource, budgeted first, as the model prints."""
    keys = list(budget) + sorted(k for k in used if k not in budget)
    out = []
    for key in keys:
        share = fraction(used.get(key), budget.get(key))
        out.append(
            {
                "resource": key,
                "used": used.get(key, "0"),
                "budget": budget.get(key),
                "percent": None if share is None else round(share * 100, 1),
            }
        )
    return out


def condition_line(cond: Mapping[str, Any]) -> Text:
    """`✔ Ready: Reconciled` / `✖ Ready: BudgetExceeded - message`. A condition is
    good when True, but for the negative-polarity ones (Drifted, Stalled...)."""
    negative = cond.get("type") in ("Drifted", "Stalled", "Reconciling", "Degraded")
    true = cond.get("status") == "True"
    good = true != negative
    mark = Text("✔ " if good else "✖ ", style="green" if good else "red")
    mark.append(f"{cond.get('type')}={cond.get('status')}", style="bold" if not good else "")
    if cond.get("reason"):
        mark.append(f" ({cond['reason']})", style="cyan")
    if cond.get("message") and not good:
        mark.append(f": {cond['message']}")
    return mark


def _status(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def ready(obj: Mapping[str, Any]) -> str:
    for cond in _status(obj).get("conditions") or []:
        if cond.get("type") == "Ready":
            return (
                "Ready" if cond.get("status") == "True" else str(cond.get("reason") or "NotReady")
            )
    return "Unknown"


def _ready_text(obj: Mapping[str, Any]) -> Text:
    word = ready(obj)
    return Text(word, style="green" if word == "Ready" else "yellow")


# --- tenants ------------------------------------------------------------------------


def app_model(summary: Mapping[str, Any]) -> dict[str, Any]:
    """An Application as the plugin shows it (from a VelaSync summary or summarize())."""
    return {
        "name": summary.get("name"),
        "namespace": summary.get("namespace"),
        "phase": summary.get("phase"),
        "healthy": bool(summary.get("healthy")),
        "revision": summary.get("revision"),
        "since": summary.get("since"),
        "message": summary.get("message"),
        "podSelector": summary.get("podSelector"),
    }


def tenant_model(
    tenant: Mapping[str, Any],
    projects: Iterable[Mapping[str, Any]],
    velasyncs: Iterable[Mapping[str, Any]],
    usage: Mapping[str, Any] | None,
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """A tenant with its projects, their namespaces (by environment) and the
    Applications in each, usage against budget and conditions: what `tenant` prints."""
    name = tenant["metadata"]["name"]
    status = _status(tenant)
    apps_by_ns: dict[str, list[dict[str, Any]]] = {}
    for sync in velasyncs:
        for summary in _status(sync).get("applications") or []:
            apps_by_ns.setdefault(summary.get("namespace", ""), []).append(app_model(summary))
    project_models = []
    in_projects: set[str] = set()
    for project in sorted(projects, key=lambda p: p["metadata"]["name"]):
        pname = project["metadata"]["name"]
        namespaces = []
        for ns in _status(project).get("namespaces") or []:
            in_projects.add(ns)
            prefix = f"{name}-{pname}-"
            namespaces.append(
                {
                    "name": ns,
                    "environment": ns[len(prefix) :] if ns.startswith(prefix) else None,
                    "applications": apps_by_ns.get(ns, []),
                }
            )
        project_models.append(
            {
                "name": pname,
                "ready": ready(project),
                "conditions": list(_status(project).get("conditions") or []),
                "claimed": dict(_status(project).get("claimed") or {}),
                "namespaces": namespaces,
            }
        )
    budget = dict(
        (usage or {}).get("budget")
        or ((tenant.get("spec") or {}).get("budget") or {}).get("hard")
        or {}
    )
    used = dict((usage or {}).get("used") or status.get("usage") or {})
    return {
        "name": name,
        "displayName": (tenant.get("spec") or {}).get("displayName"),
        "phase": status.get("phase"),
        "ready": ready(tenant),
        "conditions": list(status.get("conditions") or []),
        "usage": usage_lines(budget, used),
        "pods": (usage or {}).get("pods"),
        "namespaces": [ns for ns in status.get("namespaces") or [] if ns not in in_projects],
        "projects": project_models,
        "notes": list(notes),
    }


def _app_text(app: Mapping[str, Any], now: datetime) -> Text:
    healthy = app.get("healthy")
    text = Text("app ", style="dim")
    text.append(str(app.get("name")), style="bold")
    text.append(f"  {app.get('phase') or 'no status'}")
    if app.get("revision"):
        text.append(f"  rev {app['revision']}", style="cyan")
    text.append("  healthy" if healthy else "  unhealthy", style="green" if healthy else "red")
    text.append(f"  {age(app.get('since'), now)}", style="dim")
    if not healthy and app.get("message"):
        text.append(f"  {app['message']}", style="red")
    return text


def _usage_node(parent: Tree, lines: list[dict[str, Any]]) -> None:
    if not lines:
        return
    node = parent.add(Text("usage vs budget", style="bold"))
    width = max(len(line["resource"]) for line in lines)
    for line in lines:
        share = None if line["percent"] is None else line["percent"] / 100
        text = Text(line["resource"].ljust(width) + "  ")
        text.append_text(bar(share))
        budget = line["budget"] if line["budget"] is not None else "∞"
        pct = f" ({line['percent']:g}%)" if line["percent"] is not None else ""
        text.append(f"  {line['used']}/{budget}{pct}")
        node.add(text)


def tenant_tree(model: Mapping[str, Any], now: datetime | None = None) -> Tree:
    """tenant -> usage, conditions, namespaces, projects -> environments -> apps."""
    now = now or datetime.now(UTC)
    head = Text("tenant ", style="dim")
    head.append(model["name"], style="bold magenta")
    if model.get("displayName"):
        head.append(f" ({model['displayName']})")
    head.append("  ")
    head.append(model["ready"], style="green" if model["ready"] == "Ready" else "yellow")
    tree = Tree(head)
    _usage_node(tree, model["usage"])
    if model["conditions"]:
        conds = tree.add(Text("conditions", style="bold"))
        for cond in model["conditions"]:
            conds.add(condition_line(cond))
    for ns in model["namespaces"]:
        tree.add(Text(f"namespace {ns}", style="blue"))
    for project in model["projects"]:
        ptext = Text("project ", style="dim")
        ptext.append(project["name"], style="bold")
        ptext.append("  ")
        ptext.append(project["ready"], style="green" if project["ready"] == "Ready" else "yellow")
        pnode = tree.add(ptext)
        for cond in project["conditions"]:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                continue
            pnode.add(condition_line(cond))
        for ns in project["namespaces"]:
            label = Text(f"namespace {ns['name']}", style="blue")
            if ns.get("environment"):
                label = Text(f"env {ns['environment']} ", style="dim") + label
            nsnode = pnode.add(label)
            for app in ns["applications"]:
                nsnode.add(_app_text(app, now))
    for note in model.get("notes") or []:
        tree.add(Text(f"note: {note}", style="dim italic"))
    return tree


# --- usage --------------------------------------------------------------------------


def highest_share(usage: Mapping[str, Any]) -> float:
    """The largest used/budget over the usage's resources (-1 with no budget at all)."""
    shares = [
        share
        for key, limit in (usage.get("budget") or {}).items()
        if (share := fraction((usage.get("used") or {}).get(key), limit)) is not None
    ]
    return max(shares, default=-1.0)


def usage_model(usages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """TenantUsages, highest use first (by their most used resource), then by name."""
    ordered = sorted(usages, key=lambda u: (-highest_share(u), u["metadata"]["name"]))
    return [
        {
            "tenant": u["metadata"]["name"],
            "highestPercent": (round(highest_share(u) * 100, 1) if highest_share(u) >= 0 else None),
            "pods": u.get("pods"),
            "namespaces": len(u.get("namespaces") or []),
            "projects": len(u.get("projects") or []),
            "resources": usage_lines(u.get("budget") or {}, u.get("used") or {}),
        }
        for u in ordered
    ]


def usage_table(model: list[dict[str, Any]]) -> Table:
    table = Table(title="Tenant usage (highest first)", title_justify="left")
    for column in ("TENANT", "RESOURCE", "USED", "BUDGET", "USE", ""):
        table.add_column(column, justify="right" if column in ("USED", "BUDGET", "USE") else "left")
    for row in model:
        resources = row["resources"] or [
            {"resource": "-", "used": "-", "budget": None, "percent": None}
        ]
        for i, line in enumerate(resources):
            share = None if line["percent"] is None else line["percent"] / 100
            table.add_row(
                row["tenant"] if i == 0 else "",
                line["resource"],
                str(line["used"]),
                str(line["budget"]) if line["budget"] is not None else "-",
                f"{line['percent']:g}%" if line["percent"] is not None else "-",
                bar(share) if line["budget"] is not None else Text(""),
                end_section=i == len(resources) - 1,
            )
    return table


# --- apps ---------------------------------------------------------------------------


def apps_table(apps: list[dict[str, Any]], now: datetime | None = None) -> Table:
    now = now or datetime.now(UTC)
    table = Table(title="KubeVela Applications", title_justify="left")
    for column in ("NAMESPACE", "NAME", "PHASE", "REVISION", "HEALTH", "SINCE", "MESSAGE"):
        table.add_column(column)
    for app in apps:
        table.add_row(
            str(app.get("namespace")),
            str(app.get("name")),
            str(app.get("phase") or "-"),
            str(app.get("revision") or "-"),
            Text("healthy", style="green") if app["healthy"] else Text("unhealthy", style="red"),
            age(app.get("since"), now),
            str(app.get("message") or ""),
        )
    return table


# --- doctor -------------------------------------------------------------------------


def doctor_table(checks: list[dict[str, Any]]) -> Table:
    table = Table(title="kubenova doctor", title_justify="left")
    for column in ("", "CHECK", "FOUND", "FIX"):
        table.add_column(column)
    marks = {"ok": ("✔", "green"), "warn": ("!", "yellow"), "fail": ("✖", "red")}
    for check in checks:
        mark, style = marks[check["status"]]
        table.add_row(
            Text(mark, style=style), check["check"], check["found"], check.get("fix") or ""
        )
    return table
