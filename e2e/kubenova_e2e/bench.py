"""`python -m kubenova_e2e bench`: how fast Kubenova converges and what it costs, against
a raw server-side-apply baseline on the same API server (docs/benchmarks.md).

For each N, on a fresh local control plane:

1. baseline: a minimal client (aiohttp, as many connections as the operator's client
   pool) applies N Tenants, their 2 Projects each and exactly the children Kubenova's own
   builders (resources/) make for them, tenant by tenant concurrently, in Kubenova's write
   waves. That is the physical limit here. Its objects are labelled so the operator
   ignores them, and its Kubenova kinds and cluster-scoped objects are deleted before the
   operator starts (FlowSchemas and cluster RBAC objects cost every later request).
2. the operator starts; N Tenants and 2N Projects (2 environments each) are applied in
   one burst, as a GitOps tool would (a tenant's Projects as soon as its owner namespace
   exists); convergence = every Tenant and Project Ready at its generation.
3. into the loaded, idle system: single Tenant apply -> Ready, KubeConfigRequest apply ->
   kubeconfig Secret readable, drift heal (a RoleBinding deleted, a ResourceQuota edited,
   in random tenants), each `--samples` times.
4. an idle window: the operator's API requests by verb, from the API server's audit log
   (apiserver_request_total has no user or user-agent label), the operator's RSS and CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import re
import signal
import ssl
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import matplotlib
from kubernetes_asyncio import client as k8s_client

from kubenova_operator.api.common import API_VERSION
from kubenova_operator.api.project import Project
from kubenova_operator.api.tenant import Tenant, owner_namespace
from kubenova_operator.config import Settings
from kubenova_operator.kube.kinds import REGISTRY, WAVES, wave_of
from kubenova_operator.resources import labels as L
from kubenova_operator.resources.budget import ProjectInput, admit_projects
from kubenova_operator.resources.credentials import default_requests, request_identities
from kubenova_operator.resources.fairness import tenant_flow_schema
from kubenova_operator.resources.project import project_children
from kubenova_operator.resources.syncs import capsule_sync, vela_sync
from kubenova_operator.resources.tenant import tenant_children

from .build import REPO, cache_dir, controlplane_binary
from .controlplane import LocalControlPlane
from .platform import OperatorProcess, install_platform

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

USER_AGENT = "kubenova-bench"
BENCH_MANAGER = "kubenova-bench"
BASELINE_MANAGED_BY = "kubenova-baseline"  # the operator ignores what is not "kubenova"
FULL_NS = (50, 100, 250, 500)
# The product's default resync period (config.py), which the benchmark runs with.
RESYNC_SECONDS = int(Settings.model_fields["resync_seconds"].default)
QUICK_NS = (25, 50)
PROJECTS = ("web", "api")
ENVIRONMENTS = ("dev", "prod")
SAMPLE_TIMEOUT = 300.0  # seconds a latency sample may take (counted as this if longer)
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# The operator's client pool: kubernetes-asyncio's default, which the operator keeps.
OPERATOR_CONNECTIONS = int(k8s_client.Configuration().connection_pool_maxsize)

PLURALS = {child.kind: child.plural for child in REGISTRY} | {
    "Tenant": "tenants",
    "Project": "projects",
    "KubeConfigRequest": "kubeconfigrequests",
    "CapsuleSync": "capsulesyncs",
    "VelaSync": "velasyncs",
    "Secret": "secrets",
}
API_VERSIONS = {child.kind: child.api_version for child in REGISTRY} | {
    "Tenant": API_VERSION,
    "Project": API_VERSION,
    "KubeConfigRequest": API_VERSION,
    "CapsuleSync": API_VERSION,
    "VelaSync": API_VERSION,
    "Secret": "v1",
}

# The API server's audit policy for a benchmark run: every request's metadata but the
# control plane's own, so the operator's reads are counted too.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["*"]
  - level: None
    users: [system:apiserver, system:kube-controller-manager, system:kube-scheduler]
  - level: None
    userGroups: ["system:serviceaccounts:kube-system", "system:nodes"]
  - level: Metadata
"""


def say(message: str) -> None:
    load = os.getloadavg()[0]
    print(f"[bench {time.strftime('%H:%M:%S')} load {load:.1f}] {message}", flush=True)


def path(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    api_version = API_VERSIONS[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{where}/{PLURALS[kind]}" + (f"/{name}" if name else "")


def path_of(obj: dict[str, Any], with_name: bool = True) -> str:
    meta = obj["metadata"]
    return path(obj["kind"], meta.get("namespace"), meta["name"] if with_name else None)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float | int]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
    }


# --- the workload ------------------------------------------------------------------


def tenant_names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


def tenant_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {
            "owners": [{"kind": "User", "name": f"{name}@bench.example"}],
            "budget": {
                "hard": {
                    "requests.cpu": "8",
                    "requests.memory": "16Gi",
                    "limits.cpu": "16",
                    "limits.memory": "32Gi",
                    "pods": "100",
                }
            },
        },
    }


def project_manifest(tenant: str, name: str) -> dict[str, Any]:
    env_hard = {
        "requests.cpu": "1",
        "requests.memory": "2Gi",
        "limits.cpu": "2",
        "limits.memory": "4Gi",
        "pods": "20",
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Project",
        "metadata": {"name": name, "namespace": owner_namespace(tenant)},
        "spec": {
            "environments": [{"name": env, "hard": dict(env_hard)} for env in ENVIRONMENTS],
            "budget": {
                "hard": {
                    "requests.cpu": "2",
                    "requests.memory": "4Gi",
                    "limits.cpu": "4",
                    "limits.memory": "8Gi",
                    "pods": "40",
                }
            },
        },
    }


def kubenova_objects(
    tenant_body: dict[str, Any], project_bodies: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What Kubenova builds for a tenant and its projects once everything is in place
    (the default KubeConfigRequests' identities bound), from its own pure builders, as
    controllers/tenant.py `_desired` composes them (KubeVela not installed)."""
    tenant = Tenant.model_validate(tenant_body)
    name, uid = tenant_body["metadata"]["name"], str(tenant_body["metadata"]["uid"])
    inputs = [
        ProjectInput(name=p["metadata"]["name"], spec=Project.model_validate(p).spec)
        for p in project_bodies
    ]
    decisions, claimed = admit_projects(name, uid, tenant.spec, inputs, {})
    admitted = {d.name for d in decisions if d.admitted}
    # The requests' uids are filled in once they exist (their ServiceAccounts are owned).
    requests = [{**r, "metadata": {**r["metadata"], "uid": "0"}} for r in default_requests(name)]
    identities = request_identities(name, requests)
    out = tenant_children(name, uid, tenant.spec, claimed, identities=identities)
    out.append(capsule_sync(name, uid))
    specs = {i.name: i.spec for i in inputs if i.name in admitted}
    out.append(tenant_flow_schema(name, tenant.spec, specs))
    for item, body in zip(inputs, project_bodies, strict=True):
        if item.name in admitted:
            children = project_children(
                item.name, name, uid, tenant.spec, item.spec, identities=identities
            )
            out.extend(children)
            out.append(vela_sync(item.name, owner_namespace(name), body["metadata"]["uid"], name))
    return out


def count_by_kind(objects: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(o["kind"] for o in objects).items()))


# --- a minimal API client ------------------------------------------------------------


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class Api:
    """aiohttp with the admin's client certificate: `connections` requests in flight at
    most (watches go over a session of their own)."""

    def __init__(self, plane: LocalControlPlane, connections: int = OPERATOR_CONNECTIONS) -> None:
        self.server = plane.server
        context = ssl.create_default_context(cafile=str(plane.ca_file))
        context.load_cert_chain(str(plane.admin_cert), str(plane.admin_key))
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=connections),
            headers=headers,
            # No limit on the wait for one of the `connections` (a burst of N = 500
            # queues thousands of requests behind them), two minutes for an answer.
            timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_read=120),
        )
        self.watches = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=0),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        )
        self.requests = 0

    async def close(self) -> None:
        await self.session.close()
        await self.watches.close()

    async def request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """One request, tried again (as the operator and GitOps tools do) while the API
        server answers 429 or 5xx or does not answer, for up to a minute."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return await self._request(method, url, **kwargs)
            except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
                status = getattr(exc, "status", 0)
                transient = not isinstance(exc, ApiError) or status == 429 or status >= 500
                if not transient or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self.requests += 1
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, self.server + url, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            if response.status >= 300:
                try:
                    message = json.loads(text).get("message", text)
                except ValueError:
                    message = text
                raise ApiError(response.status, f"{method} {url}: {message}")
            return dict(json.loads(text)) if text else {}

    async def apply(self, obj: dict[str, Any], manager: str = BENCH_MANAGER) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            path_of(obj),
            body=obj,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": manager, "force": "true"},
        )

    async def create(self, obj: dict[str, Any], manager: str = BENCH_MANAGER) -> dict[str, Any]:
        return await self.request(
            "POST", path_of(obj, with_name=False), body=obj, params={"fieldManager": manager}
        )

    async def delete(self, url: str) -> None:
        with contextlib.suppress(ApiError):
            await self.request("DELETE", url, body={"propagationPolicy": "Background"})

    async def list(self, url: str, **params: str) -> list[dict[str, Any]]:
        return list((await self.request("GET", url, params=params or None)).get("items", []))

    async def text(self, url: str) -> str:
        async with self.session.get(self.server + url) as response:
            return await response.text()

    async def watch(
        self, url: str, resource_version: str | None = None, **params: str
    ) -> AsyncIterator[dict[str, Any]]:
        query = {"watch": "1", **params}
        if resource_version:
            query["resourceVersion"] = resource_version
        async with self.watches.get(self.server + url, params=query) as response:
            if response.status != 200:
                raise ApiError(response.status, await response.text())
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


Key = tuple[str, str]  # (namespace, name)


@dataclass
class _Waiter:
    remaining: set[Key]
    done: asyncio.Future[None]


class Watcher:
    """One watch on a collection: the latest of every object, when each first met
    `predicate`, and waiters for sets of keys (told incrementally, so a burst of events
    costs O(1) each)."""

    def __init__(
        self,
        api: Api,
        url: str,
        predicate: Callable[[dict[str, Any]], bool],
        **params: str,
    ) -> None:
        self.api, self.url, self.params = api, url, params
        self.predicate = predicate
        self.objects: dict[Key, dict[str, Any]] = {}
        self.met_at: dict[Key, float] = {}
        self.events = 0
        self._waiters: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()

    async def start(self) -> None:
        items = await self.api.request("GET", self.url, params=self.params or None)
        for obj in items.get("items", []):
            self._seen(obj)
        version = str(items["metadata"]["resourceVersion"])
        self._task = asyncio.create_task(self._run(version))

    async def _run(self, version: str) -> None:
        while True:
            try:
                async for event in self.api.watch(self.url, version, **self.params):
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    version = obj["metadata"].get("resourceVersion", version)
                    if event["type"] == "BOOKMARK":
                        continue
                    self.events += 1
                    if event["type"] == "DELETED":
                        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                        self.objects.pop(key, None)
                        self.met_at.pop(key, None)
                    else:
                        self._seen(obj)
            except (aiohttp.ClientError, TimeoutError, ApiError):
                await asyncio.sleep(0.2)
            if not version:  # expired: start over from a fresh list
                items = await self.api.request("GET", self.url, params=self.params or None)
                for obj in items.get("items", []):
                    self._seen(obj)
                version = str(items["metadata"]["resourceVersion"])

    def _seen(self, obj: dict[str, Any]) -> None:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.objects[key] = obj
        if not self.predicate(obj):
            self.met_at.pop(key, None)
            return
        if key in self.met_at:
            return
        self.met_at[key] = time.monotonic()
        for waiter in self._waiters:
            waiter.remaining.discard(key)
            if not waiter.remaining and not waiter.done.done():
                waiter.done.set_result(None)

    async def wait(self, keys: Iterable[Key], seconds: float) -> None:
        remaining = {k for k in keys if k not in self.met_at}
        if not remaining:
            return
        waiter = _Waiter(remaining, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.done, seconds)
        finally:
            self._waiters.remove(waiter)

    async def elapsed(self, key: Key, started: float) -> float:
        """Seconds from `started` until `key` met the predicate; a sample that takes
        longer than SAMPLE_TIMEOUT counts as SAMPLE_TIMEOUT (the summary's max shows it)."""
        try:
            await self.wait([key], seconds=SAMPLE_TIMEOUT)
        except TimeoutError:
            say(f"a sample took more than {SAMPLE_TIMEOUT:.0f}s: {key}")
            return SAMPLE_TIMEOUT
        return self.met_at[key] - started

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# --- measurements --------------------------------------------------------------------


def process_usage(pid: int) -> dict[str, float]:
    """RSS (MB) and CPU seconds (user + system) of a running process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[11]) + int(stat[12])) / ticks  # utime, stime
    return {"rss_mb": round(rss_kb / 1024, 1), "cpu_seconds": round(cpu, 2)}


def audit_counts(
    files: list[Path], user: str, start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """The operator's requests between `start` and `end`, from the audit log: by verb,
    and by verb and resource. The operator is `user` with a user agent other than the
    benchmark's or kubectl's (in case both act as one identity)."""
    by_verb: Counter[str] = Counter()
    by_request: Counter[str] = Counter()
    writes: Counter[str] = Counter()  # which objects, leader election's aside
    for file in files:
        with file.open() as lines:
            for line in lines:
                event = json.loads(line)
                agent = event.get("userAgent", "")
                if event.get("user", {}).get("username") != user:
                    continue
                if agent.startswith((USER_AGENT, "kubectl")):
                    continue
                verb = event.get("verb", "")
                # One entry per request: a watch when its response starts, the rest when
                # complete.
                stage = "ResponseStarted" if verb == "watch" else "ResponseComplete"
                if event.get("stage") != stage:
                    continue
                when = datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))
                if not start <= when <= end:
                    continue
                by_verb[verb] += 1
                ref = event.get("objectRef", {})
                request = f"{verb} {ref.get('resource', '?')}"
                by_request[request] += 1
                if is_write(request):
                    where = "/".join(p for p in (ref.get("namespace"), ref.get("name")) if p)
                    sub = f" ({ref['subresource']})" if ref.get("subresource") else ""
                    writes[f"{request} {where}{sub}"] += 1
    return {
        "by_verb": dict(sorted(by_verb.items())),
        "by_request": dict(sorted(by_request.items())),
        "writes": dict(writes.most_common(20)),
    }


def is_write(request: str) -> bool:
    """A "verb resource" of audit_counts that is a write, leader election's aside (a
    Lease renewed every few seconds is what holding the lead is)."""
    verb, _, resource = request.partition(" ")
    return verb in WRITE_VERBS and resource != "leases"


def other_reads(requests: dict[str, int]) -> dict[str, int]:
    """The reads of audit_counts, leader election's Lease GETs aside."""
    return {
        what: c
        for what, c in requests.items()
        if what.split(" ")[0] not in WRITE_VERBS and not what.endswith(" leases")
    }


def reconcile_totals(metrics: str) -> dict[str, int]:
    """The operator's controller_runtime_reconcile_total summed by controller."""
    totals: Counter[str] = Counter()
    for line in metrics.splitlines():
        if line.startswith("controller_runtime_reconcile_total{"):
            found = re.search(r'controller="([^"]+)"', line)
            if found:
                totals[found.group(1)] += int(float(line.rsplit(" ", 1)[1]))
    return dict(sorted(totals.items()))


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent by each component between two readings (one restarted in
    between counts from zero)."""
    return {
        c: round(after[c] - before.get(c, 0.0) if after[c] >= before.get(c, 0.0) else after[c], 2)
        for c in sorted(after)
    }


def counter_delta(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] - before.get(k, 0)}


def request_totals(metrics: str) -> Counter[str]:
    """apiserver_request_total summed by verb (every client: the metric has no user)."""
    totals: Counter[str] = Counter()
    for line in metrics.splitlines():
        if line.startswith("apiserver_request_total{"):
            verb = re.search(r'verb="([^"]+)"', line)
            if verb:
                totals[verb.group(1)] += int(float(line.rsplit(" ", 1)[1]))
    return totals


@dataclass
class Result:
    n: int
    load_start: float
    baseline_seconds: float = 0.0
    baseline_objects: dict[str, int] = field(default_factory=dict)
    # CPU seconds the baseline's client (this process) spent writing them.
    baseline_client_cpu_seconds: float = 0.0
    kubenova_seconds: float = 0.0
    kubenova_objects: dict[str, int] = field(default_factory=dict)
    ratio: float = 0.0
    load_converge: float = 0.0
    tenant_ready: dict[str, float | int] = field(default_factory=dict)
    kcr_secret: dict[str, float | int] = field(default_factory=dict)
    drift_heal: dict[str, float | int] = field(default_factory=dict)
    idle_seconds: float = 0.0
    idle_operator_requests: dict[str, dict[str, int]] = field(default_factory=dict)
    idle_all_clients_by_verb: dict[str, int] = field(default_factory=dict)
    idle_writes_per_minute: float = 0.0
    at_start: dict[str, float] = field(default_factory=dict)  # operator healthy, idle
    after_convergence: dict[str, float] = field(default_factory=dict)
    # controller_runtime_reconcile_total by controller, from the operator's /metrics.
    passes_at_convergence: dict[str, int] = field(default_factory=dict)
    after_idle: dict[str, float] = field(default_factory=dict)
    load_end: float = 0.0
    # What each burst cost the API server's side: requests by verb (every client,
    # apiserver_request_total) and the control plane's CPU seconds (etcd, API server,
    # controller-manager, scheduler), for the baseline's burst and Kubenova's.
    baseline_requests: dict[str, int] = field(default_factory=dict)
    baseline_plane_cpu_seconds: float = 0.0
    baseline_plane_cpu_by_component: dict[str, float] = field(default_factory=dict)
    kubenova_requests: dict[str, int] = field(default_factory=dict)
    kubenova_plane_cpu_seconds: float = 0.0
    kubenova_plane_cpu_by_component: dict[str, float] = field(default_factory=dict)
    # The operator's own requests while it converged (audit log), by verb and resource.
    kubenova_operator_requests: dict[str, int] = field(default_factory=dict)
    kubenova_operator_cpu_seconds: float = 0.0
    # From convergence (Tenants and Projects Ready) to the burst's default
    # KubeConfigRequests all issued: the tail the latencies are sampled after.
    credentials_issued_seconds: float = 0.0


class Bench:
    def __init__(self, n: int, *, samples: int, idle_seconds: float, profile: Path | None) -> None:
        self.n = n
        self.samples = samples
        self.idle_seconds = idle_seconds
        self.profile = profile
        self.result = Result(n=n, load_start=os.getloadavg()[0])
        self.rng = random.Random(n)
        self.plane: LocalControlPlane | None = None
        self.converged_at = 0.0

    def say(self, message: str) -> None:
        say(f"N={self.n}: {message}")

    async def plane_usage(self, api: Api) -> tuple[dict[str, float], Counter[str]]:
        """The control plane's CPU seconds so far by component, and the API server's
        requests by verb."""
        assert self.plane is not None
        cpu = {
            component: process_usage(pid)["cpu_seconds"]
            for component, pid in self.plane.component_pids().items()
        }
        return cpu, request_totals(await api.text("/metrics"))

    async def run(self) -> Result:
        plane = LocalControlPlane(controlplane_binary())
        self.plane = plane
        policy = plane.workdir / "bench-audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        plane.audit_policy = policy
        operator: OperatorProcess | None = None
        api: Api | None = None
        profiler: subprocess.Popen[bytes] | None = None
        try:
            self.say("starting a control plane")
            await asyncio.to_thread(plane.start, controllers=False)
            await asyncio.to_thread(install_platform, plane.kubeconfig)
            await asyncio.to_thread(plane.start_controllers)
            api = Api(plane)
            await self.baseline(api)
            operator = OperatorProcess(
                plane.kubeconfig,
                plane.workdir,
                # The product's periods, not the tests' (platform.py shortens them).
                KUBENOVA_RESYNC_SECONDS=str(RESYNC_SECONDS),
                KUBENOVA_RELIST_SECONDS="300",
                KUBENOVA_CREDENTIAL_CHECK_SECONDS="30",
                KUBENOVA_SHIM_REFRESH_SECONDS="60",
            )
            operator.start()
            await self.until_healthy(operator)
            assert operator.proc is not None
            pid = operator.proc.pid
            self.result.at_start = process_usage(pid)
            if self.profile is not None:
                profiler = start_profiler(pid, self.profile)
            user = f"system:serviceaccount:{operator.namespace}:{operator.service_account}"
            await self.converge(api, pid, user)
            self.result.after_convergence = process_usage(pid)
            self.result.passes_at_convergence = reconcile_totals(operator.metrics())
            self.say(f"passes so far by controller: {self.result.passes_at_convergence}")
            if profiler is not None:
                stop_profiler(profiler)
                profiler = None
            await self.latencies(api)
            await self.idle(api, plane, user)
            self.result.after_idle = process_usage(pid)
            self.result.load_end = os.getloadavg()[0]
            return self.result
        except BaseException:
            if operator is not None:
                print(f"operator log, last lines:\n{operator.tail(40)}", file=sys.stderr)
            raise
        finally:
            if profiler is not None:
                stop_profiler(profiler)
            if api is not None:
                await api.close()
            if operator is not None:
                operator.stop()
            await asyncio.to_thread(plane.stop)

    async def until_healthy(self, operator: OperatorProcess) -> None:
        deadline = time.monotonic() + 120
        while not operator.healthy():
            if not operator.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not start:\n{operator.tail()}")
            await asyncio.sleep(0.2)

    # --- 1. the baseline -----------------------------------------------------------

    async def baseline(self, api: Api) -> None:
        names = tenant_names("b", self.n)
        written: list[dict[str, Any]] = []
        done = 0

        async def tenant(name: str) -> None:
            nonlocal done
            body = await api.apply(tenant_manifest(name))
            projects = [project_manifest(name, p) for p in PROJECTS]
            placeholder = [{**p, "metadata": {**p["metadata"], "uid": "0"}} for p in projects]
            objects = kubenova_objects(body, placeholder)
            for obj in objects:
                labels = obj["metadata"].setdefault("labels", {})
                labels[L.MANAGED_BY] = BASELINE_MANAGED_BY
            for wave in WAVES:
                batch = [
                    o
                    for o in objects
                    if wave_of(o["kind"]) == wave and o["kind"] != "KubeConfigRequest"
                ]
                if wave == WAVES[1]:
                    # The owner namespace exists now: the Projects go in (a GitOps tool
                    # would have retried until then) and the default KubeConfigRequests,
                    # and their uids into what they own.
                    first = [*projects, *(o for o in objects if o["kind"] == "KubeConfigRequest")]
                    created = await asyncio.gather(*(api.apply(o) for o in first))
                    uids = {
                        (o["kind"], o["metadata"]["name"]): o["metadata"]["uid"] for o in created
                    }
                    for obj in objects:
                        for ref in obj["metadata"].get("ownerReferences", []):
                            if (ref["kind"], ref["name"]) in uids:
                                ref["uid"] = uids[(ref["kind"], ref["name"])]
                write = api.create if wave == WAVES[0] else api.apply
                await asyncio.gather(*(write(o, L.FIELD_MANAGER) for o in batch))
            written.extend(objects)
            done += 1

        self.say(f"baseline: applying {self.n} tenants' objects (raw server-side apply)")
        plane_cpu, requests = await self.plane_usage(api)
        started, cpu = time.monotonic(), time.process_time()
        task = asyncio.gather(*(tenant(t) for t in names))
        await self.progress(
            task, lambda: f"baseline: {done}/{self.n} tenants done, {api.requests} requests sent"
        )
        self.result.baseline_seconds = round(time.monotonic() - started, 2)
        self.result.baseline_client_cpu_seconds = round(time.process_time() - cpu, 2)
        plane_cpu_after, requests_after = await self.plane_usage(api)
        spent = cpu_delta(plane_cpu, plane_cpu_after)
        self.result.baseline_plane_cpu_by_component = spent
        self.result.baseline_plane_cpu_seconds = round(sum(spent.values()), 2)
        self.result.baseline_requests = counter_delta(requests, requests_after)
        self.result.baseline_objects = count_by_kind(written)
        self.say(
            f"baseline: {len(written)} objects in {self.result.baseline_seconds:.1f}s "
            f"({api.requests} requests)"
        )
        # What would otherwise reach the operator (Kubenova's kinds) or tax every later
        # request (FlowSchemas, cluster RBAC): gone before it starts.
        deletions = [path("Tenant", None, t) for t in names]
        for obj in written:
            if obj["kind"] in (
                "KubeConfigRequest",
                "CapsuleSync",
                "VelaSync",
                "FlowSchema",
                "ClusterRole",
                "ClusterRoleBinding",
            ):
                deletions.append(path_of(obj))
        deletions += [path("Project", owner_namespace(t), p) for t in names for p in PROJECTS]
        await asyncio.gather(*(api.delete(u) for u in deletions))
        deadline = time.monotonic() + 300
        for kind in ("Tenant", "Project", "CapsuleSync", "VelaSync", "KubeConfigRequest"):
            while await api.list(path(kind)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"baseline {kind}s not deleted after 300 s")
                await asyncio.sleep(0.5)

    async def progress(self, task: asyncio.Future[Any], line: Callable[[], str]) -> None:
        while True:
            done, _ = await asyncio.wait({task}, timeout=5)
            if done:
                task.result()
                return
            self.say(line())

    # --- 2. Kubenova ----------------------------------------------------------------

    async def converge(self, api: Api, operator_pid: int, operator_user: str) -> None:
        names = tenant_names("t", self.n)
        tenants = Watcher(api, path("Tenant"), is_ready)
        projects = Watcher(api, path("Project"), is_ready)
        owner_namespaces = {owner_namespace(t): t for t in names}
        applied: set[str] = set()
        pending: list[asyncio.Future[Any]] = []

        def namespace_seen(obj: dict[str, Any]) -> bool:
            tenant = owner_namespaces.get(obj["metadata"]["name"])
            if tenant is not None and tenant not in applied:
                applied.add(tenant)
                applies = (api.apply(project_manifest(tenant, p)) for p in PROJECTS)
                pending.append(asyncio.gather(*applies))
            return True

        namespaces = Watcher(api, path("Namespace"), namespace_seen)
        for watcher in (tenants, projects, namespaces):
            await watcher.start()
        expected_projects = [(owner_namespace(t), p) for t in names for p in PROJECTS]
        self.say(f"kubenova: applying {self.n} Tenants and {2 * self.n} Projects")
        plane_cpu, requests = await self.plane_usage(api)
        operator_cpu = process_usage(operator_pid)["cpu_seconds"]
        wall_start = datetime.now(UTC)
        started = time.monotonic()
        await asyncio.gather(*(api.apply(tenant_manifest(t)) for t in names))
        waiting = asyncio.ensure_future(
            asyncio.gather(
                tenants.wait([("", t) for t in names], seconds=1800),
                projects.wait(expected_projects, seconds=1800),
            )
        )

        def line() -> str:
            ready_t = sum(1 for t in names if ("", t) in tenants.met_at)
            ready_p = sum(1 for k in expected_projects if k in projects.met_at)
            return (
                f"kubenova: {ready_t}/{self.n} Tenants, {ready_p}/{2 * self.n} Projects Ready "
                f"({len(applied)} tenants' Projects applied)"
            )

        await self.progress(waiting, line)
        wall_end = datetime.now(UTC)
        self.converged_at = time.monotonic()
        plane_cpu_after, requests_after = await self.plane_usage(api)
        spent = cpu_delta(plane_cpu, plane_cpu_after)
        self.result.kubenova_plane_cpu_by_component = spent
        self.result.kubenova_plane_cpu_seconds = round(sum(spent.values()), 2)
        self.result.kubenova_requests = counter_delta(requests, requests_after)
        self.result.kubenova_operator_cpu_seconds = round(
            process_usage(operator_pid)["cpu_seconds"] - operator_cpu, 2
        )
        await asyncio.gather(*pending)
        last = max(
            *(tenants.met_at[("", t)] for t in names),
            *(projects.met_at[k] for k in expected_projects),
        )
        self.result.kubenova_seconds = round(last - started, 2)
        self.result.load_converge = os.getloadavg()[0]
        self.result.ratio = round(self.result.kubenova_seconds / self.result.baseline_seconds, 2)
        for watcher in (tenants, projects, namespaces):
            await watcher.stop()
        self.say(
            f"kubenova: converged in {self.result.kubenova_seconds:.1f}s, "
            f"{self.result.ratio:.2f}x the baseline's {self.result.baseline_seconds:.1f}s"
        )
        self.result.kubenova_objects = await self.kubenova_counts(api, set(names))
        assert self.plane is not None
        await asyncio.sleep(2)  # the audit log's buffer reaches the file
        self.result.kubenova_operator_requests = audit_counts(
            self.plane.audit_log_files(), operator_user, wall_start, wall_end
        )["by_request"]
        mine = sum(self.result.kubenova_operator_requests.values())
        self.say(
            f"kubenova: requests to converge: operator {mine}"
            f" (every client {sum(self.result.kubenova_requests.values())}; the baseline's "
            f"{sum(self.result.baseline_requests.values())}); control plane CPU "
            f"{self.result.kubenova_plane_cpu_seconds:.1f}s (the baseline's "
            f"{self.result.baseline_plane_cpu_seconds:.1f}s)"
        )

    async def kubenova_counts(self, api: Api, names: set[str]) -> dict[str, int]:
        """What the operator built for the burst's tenants, by kind (the baseline's
        objects should match it exactly). Counted once the default KubeConfigRequests'
        ServiceAccounts are in: they come a pass after the tenant is Ready."""
        kinds = sorted(self.result.baseline_objects)
        deadline = time.monotonic() + 120
        while True:
            counts: dict[str, int] = {}
            for kind in kinds:
                objs = await api.list(path(kind), labelSelector=L.MANAGED_SELECTOR)
                counts[kind] = sum(
                    1 for o in objs if (o["metadata"].get("labels") or {}).get(L.TENANT) in names
                )
            if counts == self.result.baseline_objects or time.monotonic() > deadline:
                return counts
            await asyncio.sleep(1)

    # --- 3. latencies into the idle, loaded system ---------------------------------

    async def credentials_issued(self, api: Api) -> None:
        """Wait for the burst's tail: every default KubeConfigRequest of its tenants
        issued (Ready). The latencies are sampled into the idle system, after it."""
        keys = [
            (r["metadata"]["namespace"], r["metadata"]["name"])
            for t in tenant_names("t", self.n)
            for r in default_requests(t)
        ]
        requests = Watcher(api, path("KubeConfigRequest"), is_ready)
        await requests.start()
        try:
            await requests.wait(keys, seconds=900)
        finally:
            await requests.stop()
        last = max(requests.met_at[k] for k in keys)
        self.result.credentials_issued_seconds = round(max(0.0, last - self.converged_at), 2)
        self.say(
            f"the burst's {len(keys)} default KubeConfigRequests issued "
            f"{self.result.credentials_issued_seconds:.1f}s after convergence"
        )

    async def latencies(self, api: Api) -> None:
        await self.credentials_issued(api)
        self.result.tenant_ready = summary(await self.tenant_latency(api))
        self.say(f"tenant apply -> Ready: {self.result.tenant_ready}")
        self.result.kcr_secret = summary(await self.kcr_latency(api))
        self.say(f"KubeConfigRequest -> Secret: {self.result.kcr_secret}")
        self.result.drift_heal = summary(await self.drift_latency(api))
        self.say(f"drift heal: {self.result.drift_heal}")

    async def tenant_latency(self, api: Api) -> list[float]:
        tenants = Watcher(api, path("Tenant"), is_ready)
        await tenants.start()
        out = []
        for i in range(self.samples):
            name = f"single{i:03d}"
            started = time.monotonic()
            await api.apply(tenant_manifest(name))
            out.append(await tenants.elapsed(("", name), started))
        await tenants.stop()
        return out

    async def kcr_latency(self, api: Api) -> list[float]:
        out = []
        for i in range(self.samples):
            tenant = self.rng.choice(tenant_names("t", self.n))
            namespace = owner_namespace(tenant)
            name = f"bench-{i:03d}"
            secrets = Watcher(
                api,
                path("Secret", namespace),
                lambda s: bool(s.get("data")),
                fieldSelector=f"metadata.name={name}",
            )
            await secrets.start()
            request = {
                "apiVersion": API_VERSION,
                "kind": "KubeConfigRequest",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"role": "readonly", "delivery": {"mode": "Secret", "secretName": name}},
            }
            started = time.monotonic()
            await api.apply(request)
            out.append(await secrets.elapsed((namespace, name), started))
            await secrets.stop()
        return out

    async def drift_latency(self, api: Api) -> list[float]:
        names = set(tenant_names("t", self.n))

        async def ours(kind: str) -> list[dict[str, Any]]:
            objs = await api.list(path(kind), labelSelector=L.MANAGED_SELECTOR)
            return [
                {**o, "kind": kind} for o in objs if o["metadata"]["labels"].get(L.TENANT) in names
            ]

        bindings, quotas = await ours("RoleBinding"), await ours("ResourceQuota")
        out = []
        for i in range(self.samples):
            obj = self.rng.choice(bindings if i % 2 == 0 else quotas)
            out.append(await self.heal_one(api, obj))
        return out

    async def heal_one(self, api: Api, obj: dict[str, Any]) -> float:
        """Delete a RoleBinding (healed: one of that name with a new uid) or raise a
        ResourceQuota's pods (healed: its spec.hard as before, after the edit was seen)."""
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        want = dict((obj.get("spec") or {}).get("hard") or {})
        drifted = False

        def healed(o: dict[str, Any]) -> bool:
            nonlocal drifted
            if obj["kind"] == "RoleBinding":
                return bool(o["metadata"]["uid"] != meta["uid"])
            hard = (o.get("spec") or {}).get("hard") or {}
            drifted = drifted or hard.get("pods") == "12345"
            return drifted and hard == want

        watcher = Watcher(
            api, path(obj["kind"], namespace), healed, fieldSelector=f"metadata.name={name}"
        )
        await watcher.start()
        started = time.monotonic()
        if obj["kind"] == "RoleBinding":
            await api.delete(path_of(obj))
        else:
            await api.request(
                "PATCH",
                path_of(obj),
                body={"spec": {"hard": {"pods": "12345"}}},
                content_type="application/merge-patch+json",
                params={"fieldManager": "drift"},
            )
        took = await watcher.elapsed((namespace, name), started)
        await watcher.stop()
        return took

    # --- 4. idle ----------------------------------------------------------------------

    async def idle(self, api: Api, plane: LocalControlPlane, user: str) -> None:
        # Idle means nothing changes: the kube-controller-manager's quota controller is
        # still filling in the last samples' ResourceQuota usage (which the tenants'
        # status reports) for a while on a loaded machine, so the window starts one
        # resync period after the last sample: every object has had its pass since.
        self.say(f"idle: settling for one resync period ({RESYNC_SECONDS}s)")
        await asyncio.sleep(RESYNC_SECONDS)
        self.say(f"idle: watching the operator's requests for {self.idle_seconds:.0f}s")
        before = request_totals(await api.text("/metrics"))
        start = datetime.now(UTC)
        await asyncio.sleep(self.idle_seconds)
        end = datetime.now(UTC)
        after = request_totals(await api.text("/metrics"))
        await asyncio.sleep(2)  # the audit log's buffer reaches the file
        self.result.idle_seconds = self.idle_seconds
        self.result.idle_all_clients_by_verb = {
            v: after[v] - before.get(v, 0) for v in sorted(after) if after[v] - before.get(v, 0)
        }
        counts = audit_counts(plane.audit_log_files(), user, start, end)
        self.result.idle_operator_requests = counts
        writes = sum(c for what, c in counts["by_request"].items() if is_write(what))
        self.result.idle_writes_per_minute = round(writes * 60 / self.idle_seconds, 2)
        self.say(f"idle: operator requests {counts}")


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the operator until stopped (SIGINT makes it write `out`)."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "50",
            "--format",
            "raw",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def stop_profiler(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- the report ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    model = ""
    with contextlib.suppress(OSError):
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = found.group(1).strip() if found else ""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": model,
        "python": sys.version.split()[0],
        "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    """Least squares of y = a + b*N, and of log y = c + k log N (k ~ 1: linear)."""
    slope, intercept = statistics.linear_regression(xs, ys)
    exponent = 0.0
    if len(xs) > 1 and all(y > 0 for y in ys):
        logs = [math.log(x) for x in xs], [math.log(y) for y in ys]
        exponent = statistics.linear_regression(*logs)[0]
    return {
        "intercept": round(intercept, 3),
        "per_n": round(slope, 5),
        "exponent": round(exponent, 2),
    }


def growth_words(what: str, unit: str, f: dict[str, float]) -> str:
    k = f["exponent"]
    shape = "sub-linear" if k < 0.85 else "about linear" if k <= 1.15 else "worse than linear"
    return (
        f"{what} grows {shape} in N (log-log slope {k:.2f}): about "
        f"{f['intercept']:.1f} {unit} + {f['per_n'] * 100:.2f} {unit} per 100 tenants."
    )


def table(results: list[Result]) -> str:
    head = (
        "| N | baseline s | Kubenova s | ratio | tenant→Ready p50/p99 s | KCR→Secret p50/p99 s "
        "| drift heal p50/p99 s | idle writes/min | idle reads | RSS MB conv/idle "
        "| CPU s conv/idle | load 1m |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in results:
        reads = other_reads(r.idle_operator_requests.get("by_request", {}))
        rows.append(
            f"| {r.n} | {r.baseline_seconds:.1f} | {r.kubenova_seconds:.1f} | {r.ratio:.2f} "
            f"| {r.tenant_ready['p50']:.2f} / {r.tenant_ready['p99']:.2f} "
            f"| {r.kcr_secret['p50']:.2f} / {r.kcr_secret['p99']:.2f} "
            f"| {r.drift_heal['p50']:.2f} / {r.drift_heal['p99']:.2f} "
            f"| {r.idle_writes_per_minute:g} "
            f"| {', '.join(f'{v} {c}' for v, c in reads.items()) or '0'} "
            f"| {r.after_convergence['rss_mb']:.0f} / {r.after_idle['rss_mb']:.0f} "
            f"| {r.after_convergence['cpu_seconds']:.0f} / {r.after_idle['cpu_seconds']:.0f} "
            f"| {r.load_start:.1f}/{r.load_converge:.1f}/{r.load_end:.1f} |"
        )
    return head + "\n".join(rows) + "\n"


def plots(results: list[Result], out: Path) -> list[Path]:
    ns = [r.n for r in results]
    made = []
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [r.kubenova_seconds for r in results], "o-", label="Kubenova")
    ax.plot(ns, [r.baseline_seconds for r in results], "s--", label="baseline (raw SSA)")
    ax.set_xlabel("tenants (N; 2 projects x 2 environments each)")
    ax.set_ylabel("seconds to all Ready")
    ax.set_title("Convergence time vs N")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    made.append(out / "bench-convergence.png")
    fig.savefig(made[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [r.after_convergence["rss_mb"] for r in results], "o-", label="after convergence")
    ax.plot(ns, [r.after_idle["rss_mb"] for r in results], "s--", label="after idle")
    ax.set_xlabel("tenants (N)")
    ax.set_ylabel("operator RSS (MB)")
    ax.set_title("Operator memory vs N")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    made.append(out / "bench-rss.png")
    fig.savefig(made[-1], dpi=100)
    plt.close(fig)
    return made


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def floor_seconds(r: Result, cores: int) -> float:
    """The least time Kubenova's burst could take here, whatever the operator's own
    cost: the API server's and etcd's CPU seconds for it, spread over every core."""
    spent = r.kubenova_plane_cpu_by_component
    return (spent.get("kube-apiserver", 0.0) + spent.get("etcd", 0.0)) / max(cores, 1)


def cost_section(results: list[Result], cores: int) -> list[str]:
    """Both sides of the API for each burst: requests, and CPU seconds by process."""
    measured = [r for r in results if r.kubenova_plane_cpu_by_component]
    if not measured:
        return []

    def plane(spent: dict[str, float]) -> str:
        return (
            f"{spent.get('kube-apiserver', 0):.1f} / {spent.get('etcd', 0):.1f} / "
            f"{spent.get('kube-controller-manager', 0):.1f}"
        )

    lines = [
        "What each burst cost on both sides of the API: requests (every client, "
        "`apiserver_request_total`; the operator's own from the audit log) and CPU "
        "seconds (API server / etcd / controller-manager, from /proc; the client: the "
        "baseline's writer or the operator). The floor is the API server's and etcd's CPU "
        f"for Kubenova's burst spread over all {cores} cores: no operator making these "
        "requests converges faster on this machine, however little CPU it spends itself.",
        "",
        "| N | baseline requests | baseline CPU: API server / etcd / c-m | its client | "
        "Kubenova requests (operator) | Kubenova CPU: API server / etcd / c-m | operator | "
        "floor s | floor / baseline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in measured:
        floor = floor_seconds(r, cores)
        lines.append(
            f"| {r.n} | {sum(r.baseline_requests.values())} | "
            f"{plane(r.baseline_plane_cpu_by_component)} | "
            f"{r.baseline_client_cpu_seconds:.1f} | "
            f"{sum(r.kubenova_requests.values())} ({sum(r.kubenova_operator_requests.values())})"
            f" | {plane(r.kubenova_plane_cpu_by_component)} | "
            f"{r.kubenova_operator_cpu_seconds:.1f} | {floor:.1f} | "
            f"{floor / r.baseline_seconds if r.baseline_seconds else 0:.2f} |"
        )
    last = measured[-1]
    lines += [
        "",
        f"The operator's requests while N={last.n} converged, by verb and resource: "
        f"{last.kubenova_operator_requests}",
        "",
    ]
    return lines


def report(results: list[Result], info: dict[str, Any], out: Path) -> str:
    ns = [float(r.n) for r in results]
    lines = [
        BEGIN,
        f"Measured {info['date']} on {info['cores']} cores, {info['memory_gb']} GB "
        f"({info['cpu'] or 'unknown CPU'}), Python {info['python']}, commit `{info['commit']}`; "
        f"load average (1 min) at start/convergence/end of each N in the last column. "
        f"Latencies: {results[0].tenant_ready['n']} samples each; idle window "
        f"{results[0].idle_seconds:.0f} s.",
        "",
        table(results),
    ]
    if len(results) > 1:
        time_fit = fit(ns, [r.kubenova_seconds for r in results])
        base_fit = fit(ns, [r.baseline_seconds for r in results])
        rss_fit = fit(ns, [r.after_idle["rss_mb"] for r in results])
        info["fits"] = {
            "kubenova_seconds": time_fit,
            "baseline_seconds": base_fit,
            "rss_mb": rss_fit,
        }
        at_1000 = rss_fit["intercept"] + rss_fit["per_n"] * 1000
        lines += [
            "- " + growth_words("Kubenova's convergence time", "s", time_fit),
            "- " + growth_words("The baseline's time", "s", base_fit),
            "- "
            + growth_words("Operator RSS after idle", "MB", rss_fit)
            + f" Linear extrapolation to 1,000 tenants (2,000 projects, 6,000 namespaces): "
            f"about {at_1000:.0f} MB.",
            "",
        ]
    lines += [
        "![convergence vs N](bench-convergence.png) ![RSS vs N](bench-rss.png)",
        "",
        "Idle writes and reads leave out leader election (a Lease GET and update every "
        "few seconds). The idle window's requests: the operator's, from the API server's "
        "audit log (`apiserver_request_total` has no user or user-agent label; the operator "
        "is its ServiceAccount, with a user agent other than the benchmark's and kubectl's), "
        "and every client's from `apiserver_request_total` (controller-manager included):",
        "",
    ]
    for r in results:
        lines.append(
            f"- N={r.n}: operator {r.idle_operator_requests.get('by_request')}; its writes "
            f"{r.idle_operator_requests.get('writes', {})}; all clients "
            f"{r.idle_all_clients_by_verb}"
        )
    lines += [
        "",
        "Passes by controller up to convergence (`controller_runtime_reconcile_total`):",
        "",
    ]
    lines += [f"- N={r.n}: {r.passes_at_convergence}" for r in results]
    lines += [
        "",
        "The burst's tail: its default KubeConfigRequests (two a tenant) all issued, after "
        "Tenants and Projects were Ready (the latencies are sampled once it is over):",
        "",
    ]
    lines += [f"- N={r.n}: {r.credentials_issued_seconds:.1f} s" for r in results]
    lines += [
        "",
        "CPU seconds for the burst: the operator's from healthy to converged, the "
        "baseline client's for the same objects:",
        "",
    ]
    lines += [
        f"- N={r.n}: operator "
        f"{r.after_convergence['cpu_seconds'] - r.at_start.get('cpu_seconds', 0):.1f} s, "
        f"baseline client {r.baseline_client_cpu_seconds:.1f} s"
        for r in results
    ]
    lines += ["", *cost_section(results, int(info["cores"])), END]
    text = "\n".join(lines) + "\n"
    doc = out / "benchmarks.md"
    if doc.exists() and BEGIN in doc.read_text():
        old = doc.read_text()
        text = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) + 1 :]
    else:
        text = "# Benchmarks\n\n" + text
    doc.write_text(text)
    return text


def write(results: list[Result], info: dict[str, Any], out: Path) -> list[Path]:
    """benchmarks.md (its results section), benchmarks.json and the plots, from the
    results so far: written after every N, so a run cut short still leaves its numbers."""
    report(results, info, out)
    made = plots(results, out)
    (out / "benchmarks.json").write_text(
        json.dumps({"machine": info, "results": [asdict(r) for r in results]}, indent=2) + "\n"
    )
    return made


async def bench(
    ns: list[int], *, samples: int, idle_seconds: float, out: Path, profile: bool
) -> list[Result]:
    results: list[Result] = []
    info = machine()
    say(f"N = {ns} on {info['cores']} cores, {info['memory_gb']} GB; writing to {out}")
    started = time.monotonic()
    for i, n in enumerate(ns):
        say(f"--- N={n} ({i + 1} of {len(ns)}) ---")
        prof = out / f"profile-n{n}.txt" if profile and n == max(ns) else None
        results.append(
            await Bench(n, samples=samples, idle_seconds=idle_seconds, profile=prof).run()
        )
        info["total_seconds"] = round(time.monotonic() - started, 1)
        made = write(results, info, out)
    print(table(results), flush=True)
    say(
        f"done in {info['total_seconds']:.0f}s: {out / 'benchmarks.md'}, "
        f"{out / 'benchmarks.json'}, {', '.join(p.name for p in made)}"
    )
    return results


def merge(files: list[Path], out: Path) -> int:
    """Rewrite the report from the JSON of earlier runs (e.g. N = 500 run on its own):
    the results by N, the machine of the first file."""
    runs = [json.loads(f.read_text()) for f in files]
    by_n = {r["n"]: Result(**r) for run in runs for r in run["results"]}
    results = [by_n[n] for n in sorted(by_n)]
    info = dict(runs[0]["machine"])
    info["merged_from"] = [str(f) for f in files]
    write(results, info, out)
    print(table(results), flush=True)
    return 0


def main(args: Any) -> int:
    ns = list(args.n or (QUICK_NS if args.quick else FULL_NS))
    out = Path(args.out) if args.out else (cache_dir() / "bench" if args.quick else REPO / "docs")
    out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        return merge([Path(f) for f in args.merge], out)
    asyncio.run(
        bench(
            ns,
            samples=args.samples,
            idle_seconds=args.idle_seconds,
            out=out,
            profile=args.profile,
        )
    )
    return 0
