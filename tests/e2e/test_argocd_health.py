"""What Argo CD shows for Kubenova's objects: the Lua health scripts of
examples/gitops/argocd/argocd-cm-patch.yaml, run by the Lua runtime Argo CD embeds
(gopher-lua, the `argolua` peer), over objects captured live from the e2e cluster in
each state (Ready, building, stalled, deleting, revoked), and over those captures
re-labelled with every condition reason docs/tenant.md, docs/project.md and
docs/kubeconfigrequest.md document (so a reason added to the docs is checked too).

The verdicts: Ready True at the current generation is Healthy; Stalled True is
Degraded with Kubenova's reason and message (a revoked KubeConfigRequest is
Suspended: it was switched off on purpose); Reconciling True, a generation not yet
observed, no status yet, or a deletion in progress is Progressing. Missing is Argo
CD's own verdict for an object absent from the cluster; no script returns it.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubenova_e2e.argocd import Health, health, health_scripts
from kubernetes_asyncio import client, watch

from .harness import (
    GROUP,
    REPO,
    VERSION,
    condition,
    eventually,
    ready_at_generation,
    until_deleted,
)
from .harness import project_body as project
from .harness import tenant_body as tenant

DOCS = {"Tenant": "tenant.md", "Project": "project.md", "KubeConfigRequest": "kubeconfigrequest.md"}
STATUS_CONDITIONS = ("Ready", "Stalled", "Reconciling")


def documented_reasons(kind: str) -> list[tuple[str, str, str]]:
    """(condition type, status, reason) for each row of the kind's "Conditions and
    reasons" table."""
    text = (REPO / "docs" / DOCS[kind]).read_text()
    section = text.split("## Conditions and reasons", 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[str, str, str]] = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        head = re.fullmatch(r"`(\w+)`\s*(True|False)?", cells[0])
        assert head, f"{DOCS[kind]}: cannot read the row {line!r}"
        type_, status = head.groups()
        if status:  # | `Stalled` True | `Reason` | ...
            for reason in re.findall(r"`(\w+)`", cells[1]):
                rows.append((type_, status, reason))
        else:  # | `BudgetExceeded` | True `OverCommitted` / False `WithinBudget` | ...
            for value, reason in re.findall(r"(True|False)\s*`(\w+)`", cells[1]):
                rows.append((type_, value, reason))
    assert rows, f"no reason table in {DOCS[kind]}"
    return rows


def test_every_documented_reason_is_read() -> None:
    """The docs' tables as the test reads them (a guard on the parser itself)."""
    tenant_rows = documented_reasons("Tenant")
    assert ("Reconciling", "True", "DeletionBlocked") in tenant_rows
    assert ("BudgetExceeded", "True", "OverCommitted") in tenant_rows
    assert ("Stalled", "True", "BudgetExceeded") in documented_reasons("Project")
    assert ("Stalled", "True", "Revoked") in documented_reasons("KubeConfigRequest")
    assert set(health_scripts()) == {f"kubenova.io_{kind}" for kind in DOCS}


def expected(kind: str, type_: str, status: str, reason: str) -> str:
    if type_ == "Stalled":
        return "Suspended" if (kind, reason) == ("KubeConfigRequest", "Revoked") else "Degraded"
    if type_ == "Reconciling":
        return "Progressing"
    return "Healthy"  # Ready True, and the informational BudgetExceeded / Drifted


def relabel(base: dict[str, Any], type_: str, status: str, reason: str) -> dict[str, Any]:
    """`base` (a captured object) with its status conditions saying `reason`: for a
    Stalled or Reconciling row, Ready False and that condition True with the reason;
    for Ready True, Ready's reason; for any other condition, that one set on a Ready
    object."""
    obj = copy.deepcopy(base)
    conditions: list[dict[str, Any]] = obj["status"]["conditions"]
    generation = obj["metadata"]["generation"]
    message = f"as documented: {reason}"

    def put(t: str, s: str) -> None:
        for c in conditions:
            if c["type"] == t:
                c.update(status=s, reason=reason, message=message)
                return
        conditions.append(
            {
                "type": t,
                "status": s,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        )

    if type_ in ("Stalled", "Reconciling"):
        other = "Reconciling" if type_ == "Stalled" else "Stalled"
        conditions[:] = [c for c in conditions if c["type"] != other]
        put("Ready", "False")
        put(type_, status)
    else:
        put(type_, status)
    return obj


async def watch_versions(
    api: client.ApiClient, plural: str, name: str, namespace: str | None, created: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every version of a new object from `created` until it is Ready or Stalled."""
    custom = client.CustomObjectsApi(api)
    versions = [created]
    args: tuple[Any, ...] = (
        (GROUP, VERSION, namespace, plural)
        if namespace
        else (
            GROUP,
            VERSION,
            plural,
        )
    )
    func = custom.list_namespaced_custom_object if namespace else custom.list_cluster_custom_object
    async with watch.Watch().stream(
        func,
        *args,
        field_selector=f"metadata.name={name}",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=60,
    ) as events:
        async for event in events:
            body = dict(event["object"])
            versions.append(body)
            stalled = (condition(body, "Stalled") or {}).get("status") == "True"
            if ready_at_generation(body) or stalled:
                break
    return versions


def reconciling(body: dict[str, Any]) -> bool:
    return (condition(body, "Reconciling") or {}).get("status") == "True"


def stalled(body: dict[str, Any], reason: str) -> bool:
    found = condition(body, "Stalled") or {}
    return found.get("status") == "True" and found.get("reason") == reason


class Captures:
    """Kubenova's objects read from the API server in the states Argo CD must tell
    apart, by a label such as "tenant ready"."""

    def __init__(self, api: client.ApiClient, tenant_name: str) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.t = tenant_name
        self.owner_ns = f"{tenant_name}-owner"
        self.conflict = f"{tenant_name}x"
        self.objects: dict[str, dict[str, Any]] = {}

    async def get(self, plural: str, name: str, namespace: str | None) -> dict[str, Any]:
        if namespace:
            return dict(
                await self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name
                )
            )
        return dict(await self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name))

    async def when(
        self,
        key: str,
        plural: str,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        namespace: str | None = None,
    ) -> None:
        async def probe() -> dict[str, Any]:
            body = await self.get(plural, name, namespace)
            assert predicate(body), (body.get("status") or {}).get("conditions")
            return body

        body = await eventually(probe, deadline=60, what=key)
        assert body is not None
        self.objects[key] = body

    async def create(self, plural: str, body: dict[str, Any]) -> None:
        await self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.owner_ns, plural, body
        )

    async def tenants(self) -> None:
        """A Tenant from creation (the versions Kubenova writes while building, then
        Ready), and one whose owner namespace is somebody else's (Stalled)."""
        spec = {
            "budget": {"hard": {"requests.cpu": "2"}},
            "credentials": {"defaultTTLSeconds": 600, "maxTTLSeconds": 3600},
        }
        created = dict(
            await self.custom.create_cluster_custom_object(
                GROUP, VERSION, "tenants", tenant(self.t, **spec)
            )
        )
        self.objects["tenant new"] = created  # as stored on create: no status yet
        versions = await watch_versions(self.api, "tenants", self.t, None, created)
        building = [
            v
            for v in versions
            if v.get("status")
            and reconciling(v)
            and v["status"].get("observedGeneration") == v["metadata"]["generation"]
        ]
        if building:
            self.objects["tenant building"] = building[0]
        await self.when("tenant ready", "tenants", self.t, ready_at_generation)

        namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name=f"{self.conflict}-owner"))
        await client.CoreV1Api(self.api).create_namespace(namespace)
        await self.custom.create_cluster_custom_object(
            GROUP, VERSION, "tenants", tenant(self.conflict)
        )
        await self.when(
            "tenant stalled", "tenants", self.conflict, lambda b: stalled(b, "NamespaceConflict")
        )

    async def projects(self) -> None:
        """One Project Ready, one over the budget (Stalled BudgetExceeded), and the ready
        one as it reads right after a spec change (generation not yet observed)."""
        ns = self.owner_ns
        await self.create("projects", project(self.t, "ok", budget={"hard": {"requests.cpu": "1"}}))
        await self.when("project ready", "projects", "ok", ready_at_generation, ns)
        await self.create(
            "projects", project(self.t, "big", budget={"hard": {"requests.cpu": "4"}})
        )
        await self.when(
            "project stalled", "projects", "big", lambda b: stalled(b, "BudgetExceeded"), ns
        )
        ahead = copy.deepcopy(self.objects["project ready"])
        ahead["metadata"]["generation"] += 1
        self.objects["project not observed"] = ahead

    async def requests(self) -> None:
        """KubeConfigRequests issued, over the tenant's max TTL, revoked, and a developer
        request for the stalled project (Stalled ProjectNotReady: "fix the Project
        first")."""
        for name, spec in (
            ("ok", {"role": "owner"}),
            ("long", {"role": "owner", "ttlSeconds": 7200}),
            ("off", {"role": "readonly", "revoked": True}),
            ("dev", {"role": "developer", "project": "big"}),
        ):
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "KubeConfigRequest",
                "metadata": {"name": name, "namespace": self.owner_ns},
                "spec": spec,
            }
            await self.create("kubeconfigrequests", body)
        plural, ns = "kubeconfigrequests", self.owner_ns
        await self.when("kcr ready", plural, "ok", ready_at_generation, ns)
        await self.when(
            "kcr stalled", plural, "long", lambda b: stalled(b, "TTLExceedsTenantMax"), ns
        )
        await self.when("kcr revoked", plural, "off", lambda b: stalled(b, "Revoked"), ns)
        await self.when(
            "kcr project stalled", plural, "dev", lambda b: stalled(b, "ProjectNotReady"), ns
        )

    async def deleting(self) -> None:
        """The Tenant deleted while it has Projects: held, Reconciling DeletionBlocked."""
        await self.custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", self.t)
        await self.when(
            "tenant deleting",
            "tenants",
            self.t,
            lambda b: bool(b["metadata"].get("deletionTimestamp")) and reconciling(b),
        )

    async def clean_up(self) -> None:
        ns = self.owner_ns
        for name in ("ok", "long", "off", "dev"):
            await self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, ns, "kubeconfigrequests", name
            )
        for name in ("ok", "big"):
            await self.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "projects", name)
        await until_deleted(self.api, "tenants", self.t, deadline=60)
        await self.custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", self.conflict)
        await client.CoreV1Api(self.api).delete_namespace(f"{self.conflict}-owner")


WANT = {
    "tenant new": "Progressing",
    "tenant building": "Progressing",
    "tenant ready": "Healthy",
    "tenant stalled": "Degraded",
    "tenant deleting": "Progressing",
    "project ready": "Healthy",
    "project stalled": "Degraded",
    "project not observed": "Progressing",
    "kcr ready": "Healthy",
    "kcr stalled": "Degraded",
    "kcr revoked": "Suspended",
    "kcr project stalled": "Degraded",
}


def documented_cases(
    captured: dict[str, dict[str, Any]],
) -> list[tuple[str, dict[str, Any], str]]:
    """(label, object, expected health) for every documented reason: a captured object
    of its kind in the matching state, relabelled with the reason."""
    building = "tenant building" if "tenant building" in captured else "tenant deleting"
    bases = {
        ("Tenant", "Stalled"): "tenant stalled",
        ("Tenant", "Reconciling"): building,
        ("Tenant", "Ready"): "tenant ready",
        ("Project", "Stalled"): "project stalled",
        ("Project", "Reconciling"): "project stalled",  # Kubenova's shape, Stalled swapped out
        ("Project", "Ready"): "project ready",
        ("KubeConfigRequest", "Stalled"): "kcr stalled",
        ("KubeConfigRequest", "Reconciling"): "kcr stalled",  # Stalled swapped out
        ("KubeConfigRequest", "Ready"): "kcr ready",
    }
    cases = []
    for kind in DOCS:
        for type_, status, reason in documented_reasons(kind):
            state = type_ if type_ in STATUS_CONDITIONS else "Ready"
            obj = relabel(captured[bases[(kind, state)]], type_, status, reason)
            label = f"{kind} {type_}={status} {reason}"
            cases.append((label, obj, expected(kind, type_, status, reason)))
    return cases


@pytest.mark.usefixtures("operator")
async def test_health_scripts_over_captured_objects(api: client.ApiClient) -> None:
    captures = Captures(api, f"ah{uuid.uuid4().hex[:5]}")
    await captures.tenants()
    await captures.projects()
    await captures.requests()
    await captures.deleting()
    captured = captures.objects

    keys = [k for k in WANT if k in captured]
    verdicts = dict(zip(keys, health([captured[k] for k in keys]), strict=True))
    report = "\n".join(f"{k}: {v}" for k, v in verdicts.items())
    print(f"Argo CD's health of the captured objects:\n{report}")
    assert {k: v.status for k, v in verdicts.items()} == {k: WANT[k] for k in keys}, report
    # Kubenova's reason and message are what Argo CD displays.
    budget = verdicts["project stalled"].message
    assert budget.startswith("BudgetExceeded: ") and "requests.cpu: asks 4" in budget, report
    assert verdicts["tenant stalled"].message.startswith("NamespaceConflict: ")
    deleting = verdicts["tenant deleting"].message
    assert deleting.startswith("DeletionBlocked: ") and "big" in deleting, report
    assert verdicts["kcr project stalled"].message.startswith("ProjectNotReady: "), report

    cases = documented_cases(captured)
    results: list[Health] = health([obj for _, obj, _ in cases])
    wrong = [
        f"{label}: got {got}, want {want}"
        for (label, _, want), got in zip(cases, results, strict=True)
        if got.status != want
    ]
    assert not wrong, "\n".join(wrong)
    for (label, _, want), got in zip(cases, results, strict=True):
        if want != "Healthy":
            reason = label.rsplit(" ", 1)[1]
            assert got.message.startswith(f"{reason}: as documented"), (label, got)
    print(f"{len(cases)} documented reasons checked")
    await captures.clean_up()
