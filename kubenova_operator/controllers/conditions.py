"""metav1.Condition bookkeeping: a transition time changes only when the status does."""

from __future__ import annotations

from typing import Any

from ..api.common import now


def condition(
    type_: str, ok: bool | None, reason: str, message: str = "", generation: int | None = None
) -> dict[str, Any]:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    out: dict[str, Any] = {"type": type_, "status": status, "reason": reason, "message": message}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def merge_conditions(
    previous: list[dict[str, Any]] | None, wanted: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The new condition list: `wanted` in order, each keeping its previous
    lastTransitionTime when its status did not change. Conditions not in `wanted` are
    kept as they were (another controller may own them)."""
    before = {c["type"]: c for c in previous or []}
    stamp = now().isoformat().replace("+00:00", "Z")
    out = []
    for cond in wanted:
        old = before.pop(cond["type"], None)
        merged = dict(cond)
        if old is not None and old.get("status") == cond["status"]:
            merged["lastTransitionTime"] = old.get("lastTransitionTime", stamp)
        else:
            merged["lastTransitionTime"] = stamp
        out.append(merged)
    out.extend(before.values())
    return out


def find(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    for cond in conditions or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    cond = find(conditions, type_)
    return bool(cond and cond.get("status") == "True")
