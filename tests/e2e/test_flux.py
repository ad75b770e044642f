"""Flux drives Kubenova from Git: the real source-controller and kustomize-controller
(built from their Go modules, e2e/flux) fetch a repository that `git http-backend`
serves on 127.0.0.1, apply Tenants, Projects and KubeConfigRequests with server-side
apply, and wait on their health with kstatus.

The layout is the one docs/gitops.md recommends: the platform team's Kustomization (in
flux-system, as Flux itself) applies Tenants; each tenant's Kustomization lives in the
tenant's owner namespace and runs as the tenant's owner ServiceAccount
(`spec.serviceAccountName`), so it can do only what the tenant owner can.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubenova_e2e.flux import FLUX_NAMESPACE, KustomizeController, SourceController, start_flux
from kubenova_e2e.gitserver import GitServer, Repository
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .harness import (
    GROUP,
    REPO,
    VERSION,
    Cluster,
    condition,
    eventually,
    ready_at_generation,
    until_deleted,
)

SOURCE = ("source.toolkit.fluxcd.io", "v1", "gitrepositories")
KUSTOMIZE = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
# Flux's reconcile interval here (the Kustomization's; its GitRepository polls as often).
INTERVAL = 4
FLUX_LABEL = "kustomize.toolkit.fluxcd.io/name"


@dataclass
class Flux:
    """Flux's controllers and a Git server, for the module."""

    source: SourceController
    kustomize: KustomizeController
    git: GitServer

    def reconciles(self, name: str, namespace: str) -> float:
        """How many times kustomize-controller has reconciled a Kustomization (its
        gotk_reconcile_duration_seconds histogram's count)."""
        url = f"http://127.0.0.1:{self.kustomize.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        labels = f'kind="Kustomization",name="{name}",namespace="{namespace}"'
        total = 0.0
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            if series.startswith("gotk_reconcile_duration_seconds_count{") and labels in series:
                total += float(value)
        return total


@pytest.fixture(scope="module")
def flux(cluster: Cluster, workdir: Path) -> Iterator[Flux]:
    source, kustomize = start_flux(cluster.kubeconfig, workdir)
    try:
        with GitServer(workdir / "git") as git:
            yield Flux(source, kustomize, git)
    finally:
        kustomize.stop()
        source.stop()


def yamls(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def git_repository(name: str, namespace: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, "interval": f"{INTERVAL}s", "ref": {"branch": "main"}},
    }


def kustomization(
    name: str, namespace: str, source: str, path: str, **extra: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": source},
            "path": path,
            "interval": f"{INTERVAL}s",
            "retryInterval": f"{INTERVAL}s",
            "timeout": "2m",
            "prune": True,
            "wait": True,
            **extra,
        },
    }


def tenant_doc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {
            "owners": [{"kind": "User", "name": f"owner@{name}.example"}],
            "budget": {"hard": {"requests.cpu": "2"}},
            "deletionPolicy": "Delete",
        },
    }


def project_doc(tenant: str, name: str, cpu: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Project",
        "metadata": {"name": name, "namespace": f"{tenant}-owner"},
        "spec": {"budget": {"hard": {"requests.cpu": cpu}}, **spec},
    }


def kcr_doc(tenant: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KubeConfigRequest",
        "metadata": {"name": name, "namespace": f"{tenant}-owner"},
        "spec": {"role": "owner", "ttlSeconds": 3600},
    }


async def get_ks(api: client.ApiClient, name: str, namespace: str) -> dict[str, Any]:
    group, version, plural = KUSTOMIZE
    return dict(
        await client.CustomObjectsApi(api).get_namespaced_custom_object(
            group, version, namespace, plural, name
        )
    )


def ks_ready(ks: dict[str, Any], revision: str) -> bool:
    """Ready=True for the given Git commit, at the Kustomization's generation."""
    ready = condition(ks, "Ready") or {}
    status = ks.get("status") or {}
    return (
        ready.get("status") == "True"
        and status.get("observedGeneration") == ks["metadata"]["generation"]
        and str(status.get("lastAppliedRevision", "")).endswith(revision)
    )


async def kubenova_objects(api: client.ApiClient, tenant: str) -> list[dict[str, Any]]:
    """The Tenant (if there) and the Projects and KubeConfigRequests of its owner
    namespace that Flux applied."""
    custom = client.CustomObjectsApi(api)
    found: list[dict[str, Any]] = []
    try:
        found.append(await custom.get_cluster_custom_object(GROUP, VERSION, "tenants", tenant))
    except ApiException as exc:
        if exc.status != 404:
            raise
    for plural in ("projects", "kubeconfigrequests"):
        listing = await custom.list_namespaced_custom_object(
            GROUP, VERSION, f"{tenant}-owner", plural
        )
        found.extend(listing["items"])
    # Only what Flux applied (Kubenova's own default KubeConfigRequests are not).
    return [o for o in found if FLUX_LABEL in (o["metadata"].get("labels") or {})]


def ident(obj: dict[str, Any]) -> str:
    ns = obj["metadata"].get("namespace")
    return f"{obj['kind']}/{ns + '/' if ns else ''}{obj['metadata']['name']}"


async def ready_only_after_objects(
    api: client.ApiClient,
    ks: tuple[str, str],
    *,
    revision: str,
    tenant: str,
    kinds: set[str],
    first_look: bool = True,
) -> dict[str, Any]:
    """Poll the Kustomization `ks` (name, namespace) until Ready at `revision`; every
    time it is seen Ready, each of the tenant's objects of `kinds` must already be Ready
    at its generation."""
    name, namespace = ks
    seen_not_ready = False

    async def probe() -> dict[str, Any] | None:
        nonlocal seen_not_ready
        body = await get_ks(api, name, namespace)
        if not ks_ready(body, revision):
            seen_not_ready = True
            return None
        objects = [o for o in await kubenova_objects(api, tenant) if o["kind"] in kinds]
        not_ready = [ident(o) for o in objects if not ready_at_generation(o)]
        assert not not_ready, f"{namespace}/{name} Ready while {not_ready} are not"
        return body

    body = await eventually(probe, deadline=150, interval=0.3, what=f"{name} Ready at {revision}")
    assert body is not None
    assert seen_not_ready or not first_look, (
        f"{name} was Ready at {revision} before the test first looked"
    )
    return body


def managers(obj: dict[str, Any]) -> dict[str, set[str]]:
    """Field manager -> the top-level fields it owns (`spec`, `status`, ...), per
    managedFields."""
    owned: dict[str, set[str]] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        tops = {key.removeprefix("f:") for key in fields if key.startswith("f:")}
        owned.setdefault(str(entry["manager"]), set()).update(tops)
    return owned


@pytest.fixture
async def cleanup(api: client.ApiClient) -> AsyncIterator[list[tuple[str, str]]]:
    """Kustomizations to delete after the test (Flux prunes what they applied)."""
    made: list[tuple[str, str]] = []
    yield made
    group, version, plural = KUSTOMIZE
    custom = client.CustomObjectsApi(api)
    for name, namespace in reversed(made):
        try:
            await custom.delete_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@dataclass
class Scenario:
    """One tenant's platform repo and its two Kustomizations: `platform` (Tenants, in
    flux-system) and `projects` (its Projects and KubeConfigRequests, in its owner
    namespace, as its owner ServiceAccount)."""

    api: client.ApiClient
    flux: Flux
    tenant: str
    repo: Repository
    platform: tuple[str, str]
    projects: tuple[str, str]
    kinds: tuple[str, ...] = ("Project", "KubeConfigRequest")

    @property
    def owner_ns(self) -> str:
        return f"{self.tenant}-owner"

    async def projects_ready(self, revision: str, first_look: bool = True) -> dict[str, Any]:
        return await ready_only_after_objects(
            self.api,
            self.projects,
            revision=revision,
            tenant=self.tenant,
            kinds=set(self.kinds),
            first_look=first_look,
        )


async def start_scenario(
    api: client.ApiClient, cluster: Cluster, flux: Flux, cleanup: list[tuple[str, str]]
) -> tuple[Scenario, str]:
    """Commit a Tenant (budget: 2 CPUs), Projects web and api (1 CPU each) and a
    KubeConfigRequest; apply the two Kustomizations; wait for each to turn Ready only
    after what it applied is Ready."""
    suffix = uuid.uuid4().hex[:5]
    tenant = f"gf{suffix}"
    repo = flux.git.repository(f"platform-{suffix}")
    repo.write(
        {
            f"tenants/{tenant}.yaml": yamls(tenant_doc(tenant)),
            # Git keeps no empty directory: without this file, removing the last Tenant
            # would remove ./tenants and fail Flux's build instead of pruning.
            "tenants/README.md": "The platform's Tenants, one file each.\n",
            f"projects/{tenant}/web.yaml": yamls(
                project_doc(tenant, "web", "1", deletionPolicy="Delete")
            ),
            f"projects/{tenant}/api.yaml": yamls(project_doc(tenant, "api", "1")),
            f"projects/{tenant}/ci.yaml": yamls(kcr_doc(tenant, "ci")),
        }
    )
    rev = repo.commit("tenant and projects")
    sc = Scenario(
        api,
        flux,
        tenant,
        repo,
        platform=(f"platform-{suffix}", FLUX_NAMESPACE),
        projects=(f"projects-{suffix}", f"{tenant}-owner"),
    )

    name, ns = sc.platform
    cluster.apply(git_repository(name, ns, repo.url))
    cluster.apply(kustomization(name, ns, name, "./tenants"))
    cleanup.append(sc.platform)
    await ready_only_after_objects(api, sc.platform, revision=rev, tenant=tenant, kinds={"Tenant"})

    name, ns = sc.projects
    cluster.apply(git_repository(name, ns, repo.url))
    cluster.apply(
        kustomization(name, ns, name, f"./projects/{tenant}", serviceAccountName="kubenova-owner")
    )
    cleanup.append(sc.projects)
    await sc.projects_ready(rev)
    objects = await kubenova_objects(api, tenant)
    assert sorted(ident(o) for o in objects) == sorted(
        [
            f"Tenant/{tenant}",
            f"Project/{sc.owner_ns}/api",
            f"Project/{sc.owner_ns}/web",
            f"KubeConfigRequest/{sc.owner_ns}/ci",
        ]
    )
    return sc, rev


async def no_fight(sc: Scenario, revision: str) -> None:
    """kustomize-controller owns the spec, Kubenova the status; over three reconcile
    intervals (counted by Flux's own metric) no object is written again."""
    objects = await kubenova_objects(sc.api, sc.tenant)
    for obj in objects:
        owned = managers(obj)
        assert "spec" in owned.get("kustomize-controller", set()), (ident(obj), owned)
        assert "status" not in owned.get("kustomize-controller", set()), (ident(obj), owned)
        for manager, fields in owned.items():
            if manager != "kustomize-controller":
                assert "spec" not in fields, (ident(obj), manager, owned)
        assert "status" in owned.get("kubenova", set()), (ident(obj), owned)
    before = {ident(o): o["metadata"]["resourceVersion"] for o in objects}
    counts = {ks: sc.flux.reconciles(*ks) for ks in (sc.platform, sc.projects)}

    async def three_more() -> bool:
        return all(sc.flux.reconciles(*ks) >= n + 3 for ks, n in counts.items())

    await eventually(three_more, deadline=10 * INTERVAL, interval=1, what="3 Flux reconciles")
    objects = await kubenova_objects(sc.api, sc.tenant)
    after = {ident(o): o["metadata"]["resourceVersion"] for o in objects}
    assert after == before, f"rewritten while nothing changed: {writes(objects)}"
    for ks in (sc.platform, sc.projects):
        assert ks_ready(await get_ks(sc.api, *ks), revision)


def writes(objects: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{ident(o)}: "
        + ", ".join(f"{m.get('manager')} {m.get('time')}" for m in o["metadata"]["managedFields"])
        for o in objects
    )


async def over_budget_then_fixed(sc: Scenario) -> None:
    """A commit asking more than the tenant has left: Flux's health check fails fast
    naming the Project (Failed, i.e. Stalled); Kubenova's reason is on the Project. A
    fix commit brings the Kustomization back to Ready."""
    name, ns = sc.projects
    sc.repo.write({f"projects/{sc.tenant}/api.yaml": yamls(project_doc(sc.tenant, "api", "2"))})
    over = sc.repo.commit("api asks for more than the tenant has left")

    async def health_check_failed() -> dict[str, Any] | None:
        ks = await get_ks(sc.api, name, ns)
        ready = condition(ks, "Ready") or {}
        attempted = str(ks["status"].get("lastAttemptedRevision", ""))
        failed = ready.get("status") == "False" and ready.get("reason") == "HealthCheckFailed"
        return ks if attempted.endswith(over) and failed else None

    started = time.monotonic()
    failed = await eventually(health_check_failed, deadline=90, what="HealthCheckFailed")
    assert failed is not None
    took = time.monotonic() - started
    message = str((condition(failed, "Ready") or {}).get("message"))
    print(f"Flux's message {took:.1f}s after the commit: {message}")
    assert f"Project/{ns}/api status: 'Failed'" in message, message
    assert took < 60, f"Flux took {took:.0f}s to report a Stalled project (fail-fast expected)"
    custom = client.CustomObjectsApi(sc.api)
    api_project = await custom.get_namespaced_custom_object(GROUP, VERSION, ns, "projects", "api")
    stalled = condition(api_project, "Stalled") or {}
    assert stalled.get("status") == "True" and stalled.get("reason") == "BudgetExceeded"
    assert "requests.cpu: asks 2" in stalled.get("message", ""), stalled

    sc.repo.write({f"projects/{sc.tenant}/api.yaml": yamls(project_doc(sc.tenant, "api", "1"))})
    await sc.projects_ready(sc.repo.commit("api back within budget"))


async def project_pruned(sc: Scenario) -> None:
    """A Project removed from Git is pruned by Flux (a background-propagation delete);
    Kubenova tears it down per the Project's own deletionPolicy (web: Delete, so its
    namespace goes). A Project's deletionPolicy is its own, not its tenant's: a Project
    without one is Retain even in a Delete tenant (test_tenants_projects.py)."""
    custom = client.CustomObjectsApi(sc.api)
    web = await custom.get_namespaced_custom_object(GROUP, VERSION, sc.owner_ns, "projects", "web")
    web_namespaces = list(web["status"]["namespaces"])
    assert web_namespaces, web["status"]
    sc.repo.remove(f"projects/{sc.tenant}/web.yaml")
    pruned = sc.repo.commit("web is gone")
    started = time.monotonic()
    await until_deleted(sc.api, "projects", "web", sc.owner_ns, deadline=90)
    core = client.CoreV1Api(sc.api)

    async def namespaces_going() -> bool:
        for ns in web_namespaces:
            try:
                found = await core.read_namespace(ns)
            except ApiException as exc:
                if exc.status == 404:
                    continue
                raise
            if found.metadata.deletion_timestamp is None:
                return False
        return True

    await eventually(namespaces_going, deadline=30, what=f"{web_namespaces} deleted")
    print(f"web's namespaces deleting {time.monotonic() - started:.1f}s after the commit")
    await sc.projects_ready(pruned, first_look=False)  # may be Ready by now


async def tenant_held(sc: Scenario) -> None:
    """A Tenant removed from Git while it still has a Project: Flux prunes it, Kubenova
    holds it with its finalizer and says why on the Tenant; when the tenant's own
    Kustomization goes (pruning its Projects), the Tenant goes too."""
    sc.repo.remove(f"tenants/{sc.tenant}.yaml")
    gone = sc.repo.commit("tenant removed before its projects")
    custom = client.CustomObjectsApi(sc.api)

    async def held() -> dict[str, Any] | None:
        body = await custom.get_cluster_custom_object(GROUP, VERSION, "tenants", sc.tenant)
        reconciling = condition(body, "Reconciling") or {}
        deleting = body["metadata"].get("deletionTimestamp")
        return dict(body) if deleting and reconciling.get("reason") == "DeletionBlocked" else None

    try:
        body = await eventually(held, deadline=60, what=f"tenant {sc.tenant} DeletionBlocked")
    except AssertionError as exc:
        ks = await get_ks(sc.api, *sc.platform)
        raise AssertionError(f"{exc}; platform Kustomization: {ks.get('status')}") from exc
    assert body is not None
    assert body["status"]["phase"] == "Terminating", body["status"]
    assert "api" in (condition(body, "Reconciling") or {}).get("message", ""), body["status"]

    # Flux's verdict: the Tenant left its inventory with the prune, so the platform
    # Kustomization is Ready at the removal commit while the Tenant is still held: the
    # hold shows on the Tenant (above), not in Flux.
    platform = await eventually(
        lambda: _ready_at(sc.api, *sc.platform, gone),
        deadline=60,
        what="platform Ready at the removal commit",
    )
    assert platform is not None
    print(f"platform Kustomization with the Tenant held: {condition(platform, 'Ready')}")
    inventory = str((platform.get("status") or {}).get("inventory"))
    assert f"_{sc.tenant}_kubenova.io_Tenant" not in inventory, inventory
    still = await custom.get_cluster_custom_object(GROUP, VERSION, "tenants", sc.tenant)
    assert still["metadata"].get("deletionTimestamp"), still["metadata"]
    assert (condition(still, "Reconciling") or {}).get("reason") == "DeletionBlocked"

    # The tenant's own Kustomization goes: Flux prunes its Projects, and the Tenant,
    # no longer held, is torn down (Delete: its namespaces go).
    group, version, plural = KUSTOMIZE
    name, ns = sc.projects
    await custom.delete_namespaced_custom_object(group, version, ns, plural, name)
    await until_deleted(sc.api, "tenants", sc.tenant, deadline=90)
    core = client.CoreV1Api(sc.api)

    async def owner_going() -> bool:
        try:
            found = await core.read_namespace(sc.owner_ns)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return found.metadata.deletion_timestamp is not None

    await eventually(owner_going, deadline=30, what=f"{sc.owner_ns} deleted")


@pytest.mark.usefixtures("operator")
async def test_flux_applies_tenants_and_projects_from_git(
    api: client.ApiClient, cluster: Cluster, flux: Flux, cleanup: list[tuple[str, str]]
) -> None:
    sc, rev = await start_scenario(api, cluster, flux, cleanup)
    await no_fight(sc, rev)
    await over_budget_then_fixed(sc)
    await project_pruned(sc)
    await tenant_held(sc)


async def _ready_at(
    api: client.ApiClient, name: str, namespace: str, revision: str
) -> dict[str, Any] | None:
    ks = await get_ks(api, name, namespace)
    return ks if ks_ready(ks, revision) else None


@pytest.mark.usefixtures("operator")
async def test_tenant_kustomization_cannot_leave_its_namespaces(
    api: client.ApiClient, cluster: Cluster, flux: Flux, cleanup: list[tuple[str, str]]
) -> None:
    """Flux's multi-tenancy: a Kustomization that runs as the tenant's owner
    ServiceAccount is refused (Forbidden) outside the tenant's namespaces, and Flux
    reports the refusal on the Kustomization."""
    suffix = uuid.uuid4().hex[:5]
    tenant = f"gm{suffix}"
    owner_ns = f"{tenant}-owner"
    custom = client.CustomObjectsApi(api)
    await custom.create_cluster_custom_object(GROUP, VERSION, "tenants", tenant_doc(tenant))
    repo = flux.git.repository(f"escape-{suffix}")
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"escape-{suffix}", "namespace": "default"},
        "data": {"from": tenant},
    }
    repo.write({"escape/configmap.yaml": yamls(configmap)})
    rev = repo.commit("a ConfigMap outside the tenant")

    async def tenant_ready() -> bool:
        body = await custom.get_cluster_custom_object(GROUP, VERSION, "tenants", tenant)
        return ready_at_generation(body)

    await eventually(tenant_ready, deadline=60, what=f"tenant {tenant} Ready")
    name = f"escape-{suffix}"
    cluster.apply(git_repository(name, owner_ns, repo.url))
    cluster.apply(
        kustomization(name, owner_ns, name, "./escape", serviceAccountName="kubenova-owner")
    )
    cleanup.append((name, owner_ns))

    async def refused() -> str | None:
        ks = await get_ks(api, name, owner_ns)
        ready = condition(ks, "Ready") or {}
        attempted = str((ks.get("status") or {}).get("lastAttemptedRevision", ""))
        if attempted.endswith(rev) and ready.get("status") == "False":
            return str(ready.get("message"))
        return None

    message = await eventually(refused, deadline=60, what="the Kustomization refused")
    assert message is not None
    print(f"Flux's message: {message}")
    assert "forbidden" in message.lower(), message
    assert f"system:serviceaccount:{owner_ns}:kubenova-owner" in message, message
    try:
        await client.CoreV1Api(api).read_namespaced_config_map(f"escape-{suffix}", "default")
    except ApiException as exc:
        assert exc.status == 404
    else:
        raise AssertionError("the tenant's Kustomization created a ConfigMap in default")
    group, version, plural = KUSTOMIZE
    await custom.delete_namespaced_custom_object(group, version, owner_ns, plural, name)
    await custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", tenant)


def test_flux_examples_are_valid(cluster: Cluster, flux: Flux) -> None:
    """examples/gitops/flux/ is what a user starts from: the API server accepts every
    object of it against Flux's CRDs (server-side dry run; the tenant's objects moved to
    flux-system, as acme-owner does not exist here)."""
    paths = sorted((REPO / "examples" / "gitops" / "flux").glob("*.yaml"))
    assert paths
    for path in paths:
        text = path.read_text().replace("namespace: acme-owner", f"namespace: {FLUX_NAMESPACE}")
        result = cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "-f", "-", input=text, check=False
        )
        assert result.returncode == 0, f"{path.name}: {result.stderr}"
        assert "(server dry run)" in result.stdout, result.stdout
