"""`kubectl kubenova`: tenants, projects, apps and kubeconfigs from a user's seat.

Installed as the console script `kubectl-kubenova` (so `kubectl kubenova ...` works)
and as `kubenova` (the old name of `keygen` / `decrypt`). It uses the caller's
kubeconfig and nothing else: every command shows what the caller may see.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
import yaml
from rich.console import Console
from rich.text import Text

from ..api.common import parse_time
from ..api.tenant import owner_namespace, tenant_of_owner_namespace
from ..credentials.sealing import open_sealed
from ..integrations.kubevela import summarize
from ..resources.labels import TENANT as TENANT_LABEL
from . import credentials as C
from . import render as R
from .kube import (
    GROUP,
    VELA_GROUP,
    VELA_VERSION,
    VERSION,
    CliError,
    Denied,
    Kube,
    api_exception,
    api_message,
    guarded,
    kubeconfig_path,
)
from .kube import Permission as P

T = TypeVar("T")
PIPED_WIDTH = 160

app = typer.Typer(
    name="kubectl-kubenova",
    help=__doc__,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


class Role(StrEnum):
    owner = "owner"
    readonly = "readonly"
    developer = "developer"


OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default), json or yaml")]


def out() -> Console:
    # Piped (grep, a file, a test): wide lines, not wrapped at 80 columns.
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(width=PIPED_WIDTH if piped else None)


def err() -> Console:
    return Console(stderr=True, soft_wrap=True)


def fail(message: str) -> None:
    """`error: ...` on stderr (the message is text, never rich markup)."""
    err().print(Text("error: ", style="red") + Text(message), highlight=False)


@app.callback()
def main_options(
    ctx: typer.Context,
    kubeconfig: Annotated[
        str | None, typer.Option(help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    ] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context to use")] = None,
) -> None:
    ctx.obj = {"kubeconfig": kubeconfig, "context": context}


def run(ctx: typer.Context, work: Callable[[Kube], Awaitable[T]]) -> T:
    """Connect with the caller's kubeconfig, run `work`, print errors plainly."""

    async def go() -> T:
        kube = await Kube.connect(ctx.obj["kubeconfig"], ctx.obj["context"])
        try:
            return await work(kube)
        finally:
            await kube.close()

    try:
        return asyncio.run(go())
    except CliError as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    except api_exception() as exc:
        fail(f"{exc.status} {api_message(exc)}")
        raise typer.Exit(1) from None


def emit(data: Any, output: Output, table: Callable[[], Any]) -> None:
    if output is Output.table:
        out().print(table())
    else:
        sys.stdout.write(R.dump(data, output.value).rstrip("\n") + "\n")


# --- which tenants may I see ----------------------------------------------------------


def tenants_in_rules(rules: list[dict[str, Any]]) -> list[str]:
    """Tenant names the caller may `get` by name (from a SelfSubjectRulesReview)."""
    names: set[str] = set()
    for rule in rules:
        groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
        verbs = rule.get("verbs") or []
        if (
            (GROUP in groups or "*" in groups)
            and ("tenants" in resources or "*" in resources)
            and ("get" in verbs or "*" in verbs)
        ):
            names.update(rule.get("resourceNames") or [])
    return sorted(names)


async def candidate_tenants(kube: Kube) -> list[str]:
    names = set(tenants_in_rules(await kube.rules(kube.namespace or "default")))
    home = tenant_of_owner_namespace(kube.namespace or "")
    if home:
        names.add(home)
    return sorted(names)


async def visible_tenants(kube: Kube) -> list[dict[str, Any]]:
    """All tenants for a system owner; else the ones the caller may get by name."""
    try:
        return sorted(await kube.list_tenants(), key=lambda t: t["metadata"]["name"])
    except Denied as denied:
        found = []
        for name in await candidate_tenants(kube):
            with contextlib.suppress(Denied, api_exception()):
                found.append(await kube.get_tenant(name))
        if not found:
            raise denied from None
        return found


async def _optional(call: Awaitable[T], notes: list[str], what: str) -> T | None:
    try:
        return await call
    except Denied as denied:
        notes.append(f"{what}: {denied.permission.describe()} is not allowed")
    except api_exception() as exc:
        notes.append(f"{what}: {exc.status} {exc.reason}")
    return None


async def tenant_view(kube: Kube, tenant: dict[str, Any]) -> dict[str, Any]:
    name = tenant["metadata"]["name"]
    notes: list[str] = []
    ns = owner_namespace(name)
    projects, syncs, usage = await asyncio.gather(
        _optional(kube.list_namespaced("projects", ns), notes, "projects"),
        _optional(kube.list_namespaced("velasyncs", ns), notes, "applications"),
        _optional(kube.tenant_usage(name), notes, "live usage"),
    )
    return R.tenant_model(tenant, projects or [], syncs or [], usage, notes)


# --- commands -------------------------------------------------------------------------


@app.command()
def tenants(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Every tenant you may see, as a tree: projects, namespaces, apps, usage."""

    async def work(kube: Kube) -> list[dict[str, Any]]:
        found = await visible_tenants(kube)
        return list(await asyncio.gather(*(tenant_view(kube, t) for t in found)))

    models = run(ctx, work)
    if output is Output.table:
        console = out()
        for model in models:
            console.print(R.tenant_tree(model))
        if not models:
            console.print("no tenants")
        return
    emit(models, output, lambda: None)


@app.command()
def tenant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The tenant")],
    output: OutputOpt = Output.table,
) -> None:
    """One tenant as a tree: projects -> environments -> apps, usage vs budget, conditions."""

    async def work(kube: Kube) -> dict[str, Any]:
        return await tenant_view(kube, await kube.get_tenant(name))

    model = run(ctx, work)
    emit(model, output, lambda: R.tenant_tree(model))


@app.command()
def usage(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="One tenant (default: all you may see)")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Live usage against budget (the tenantusages API), highest use first."""

    async def work(kube: Kube) -> list[dict[str, Any]]:
        if name:
            return [await kube.tenant_usage(name)]
        try:
            return await kube.tenant_usages()
        except Denied as denied:
            found = []
            for candidate in await candidate_tenants(kube):
                with contextlib.suppress(Denied, api_exception()):
                    found.append(await kube.tenant_usage(candidate))
            if not found:
                raise denied from None
            return found

    model = R.usage_model(run(ctx, work))
    emit(model, output, lambda: R.usage_table(model))


def application_since(app_obj: dict[str, Any]) -> str | None:
    """When the Application last changed state: its newest condition transition,
    else its creation."""
    times = [
        c.get("lastTransitionTime")
        for c in (app_obj.get("status") or {}).get("conditions") or []
        if c.get("lastTransitionTime")
    ]
    parsed = [t for t in (parse_time(x) for x in times) if t is not None]
    if parsed:
        return max(parsed).isoformat().replace("+00:00", "Z")
    created = app_obj.get("metadata", {}).get("creationTimestamp")
    return str(created) if created else None


def application_model(app_obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    summary = summarize(app_obj, now=now, stuck_after=timedelta(minutes=10))
    model = R.app_model(summary.model_dump(by_alias=True, mode="json"))
    model["since"] = application_since(app_obj)
    return model


async def app_namespaces(kube: Kube, tenant_name: str | None, project: str | None) -> list[str]:
    """Where to look for Applications: a project's namespaces, every project of the
    tenants you may see, or (an app user, who may not read Projects) the context's."""
    if project:
        if not tenant_name:
            home = tenant_of_owner_namespace(kube.namespace or "")
            candidates = [home] if home else await candidate_tenants(kube)
            if len(candidates) != 1:
                raise CliError(f"which tenant's project {project!r}? pass --tenant")
            tenant_name = candidates[0]
        try:
            body = await kube.get_namespaced("projects", owner_namespace(tenant_name), project)
        except Denied:
            if kube.namespace and kube.namespace.startswith(f"{tenant_name}-{project}"):
                return [kube.namespace]
            raise
        return list((body.get("status") or {}).get("namespaces") or [])
    try:
        found = [await kube.get_tenant(tenant_name)] if tenant_name else await visible_tenants(kube)
    except Denied:
        if kube.namespace:
            return [kube.namespace]
        raise
    namespaces: list[str] = []
    for t in found:
        with contextlib.suppress(Denied):
            for p in await kube.list_namespaced("projects", owner_namespace(t["metadata"]["name"])):
                namespaces.extend((p.get("status") or {}).get("namespaces") or [])
    return namespaces or ([kube.namespace] if kube.namespace else [])


async def list_applications(kube: Kube, namespaces: list[str]) -> list[dict[str, Any]]:
    apps: list[dict[str, Any]] = []
    for ns in namespaces:
        try:
            apps.extend(await kube.list_namespaced("applications", ns, VELA_GROUP, VELA_VERSION))
        except api_exception() as exc:
            if exc.status == 404:
                raise CliError(
                    "KubeVela is not installed: the cluster does not serve "
                    "applications.core.oam.dev"
                ) from None
            raise
    return apps


@app.command()
def apps(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", "-p", help="One project")] = None,
    tenant_name: Annotated[
        str | None, typer.Option("--tenant", "-t", help="The project's tenant")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="One namespace")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """KubeVela Applications: phase, revision, health, since."""

    async def work(kube: Kube) -> list[dict[str, Any]]:
        namespaces = [namespace] if namespace else await app_namespaces(kube, tenant_name, project)
        if not namespaces:
            raise CliError("no namespace to look in: pass --namespace or --project")
        now = datetime.now(UTC)
        return [application_model(a, now) for a in await list_applications(kube, namespaces)]

    model = run(ctx, work)
    emit(model, output, lambda: R.apps_table(model))


def log_prefix(pod: str, container: str, containers: int) -> str:
    return f"[{pod}/{container}] " if containers > 1 else f"[{pod}] "


async def _published_selector(kube: Kube, namespace: str, app_name: str) -> str | None:
    """The pod selector VelaSync publishes for the app (status.applications[]
    .podSelector), when the caller may read the namespace and the VelaSyncs (owners,
    viewers); app users get the same selector computed by the same function."""
    with contextlib.suppress(Denied, api_exception()):
        ns = await guarded(kube.core.read_namespace(namespace), P("get", "namespaces"))
        tenant_name = (ns.metadata.labels or {}).get(TENANT_LABEL)
        if not tenant_name:
            return None
        for sync in await kube.list_namespaced("velasyncs", owner_namespace(tenant_name)):
            for summary in (sync.get("status") or {}).get("applications") or []:
                if summary.get("namespace") == namespace and summary.get("name") == app_name:
                    selector = summary.get("podSelector")
                    return str(selector) if selector else None
    return None


@app.command()
def logs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The Application")],
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Its namespace (default: context's)")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f")] = True,
    tail: Annotated[int | None, typer.Option(help="Lines of recent log per container")] = None,
) -> None:
    """Follow the logs of an Application's pods (the pod selector VelaSync publishes)."""

    async def work(kube: Kube) -> int:
        ns = namespace or kube.namespace
        if not ns:
            raise CliError("pass --namespace: the context has none")
        app_obj = await kube.get_namespaced("applications", ns, name, VELA_GROUP, VELA_VERSION)
        selector = await _published_selector(kube, ns, name) or str(
            application_model(app_obj, datetime.now(UTC))["podSelector"]
        )
        pods = await guarded(
            kube.core.list_namespaced_pod(ns, label_selector=selector),
            P("list", "pods", namespace=ns),
        )
        if not pods.items:
            raise CliError(f"no pods match {selector} in {ns} (yet)")
        streams = []
        for pod in pods.items:
            containers = [c.name for c in pod.spec.containers]
            for container in containers:
                streams.append(
                    _stream(
                        kube,
                        ns,
                        pod.metadata.name,
                        container,
                        prefix=log_prefix(pod.metadata.name, container, len(containers)),
                        follow=follow,
                        tail=tail,
                    )
                )
        results = await asyncio.gather(*streams)
        return 0 if all(results) else 1

    if run(ctx, work):
        raise typer.Exit(1)


async def _stream(
    kube: Kube, ns: str, pod: str, container: str, *, prefix: str, follow: bool, tail: int | None
) -> bool:
    """Copy one container's log to stdout, each line prefixed; False if unreadable."""
    kwargs: dict[str, Any] = {"container": container, "follow": follow}
    if tail is not None:
        kwargs["tail_lines"] = tail
    try:
        response: Any = await guarded(
            kube.core.read_namespaced_pod_log(pod, ns, _preload_content=False, **kwargs),
            P("get", "pods/log", namespace=ns, name=pod),
        )
    except api_exception() as exc:
        err().print(f"{prefix}cannot read logs: {api_message(exc)}", markup=False, highlight=False)
        return False
    if response.status >= 400:  # unread (_preload_content=False): not raised
        body = await response.read()
        response.release()
        failed = api_exception()(status=response.status, reason=response.reason)
        failed.body = body
        if response.status == 403:
            raise Denied(P("get", "pods/log", namespace=ns, name=pod), api_message(failed))
        err().print(f"{prefix}cannot read logs: {api_message(failed)}", markup=False)
        return False
    async for line in response.content:
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()
    return True


@app.command()
def kubeconfig(  # noqa: PLR0915, PLR0917 - a command: its options are its parameters
    ctx: typer.Context,
    tenant_name: Annotated[str, typer.Argument(metavar="TENANT", help="The tenant")],
    role: Annotated[Role, typer.Option(help="owner, readonly or developer")] = Role.owner,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="The project (developer role)")
    ] = None,
    ttl: Annotated[str | None, typer.Option(help="Token lifetime: seconds or 30m, 8h, 1d")] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="Write this file (default: merge into your kubeconfig)"),
    ] = None,
    use: Annotated[bool, typer.Option("--use", help="Switch to the new context")] = False,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Revoke it and remove the context")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the operator")] = 120,
) -> None:
    """Get a kubeconfig context for a tenant: a KubeConfigRequest encrypted to your own
    key (kept in ~/.config/kubenova), waited for, decrypted, merged."""
    if role is Role.developer and not project:
        raise typer.BadParameter("the developer role needs --project")
    if role is not Role.developer and project:
        raise typer.BadParameter("--project applies to the developer role only")
    seconds = C.parse_ttl(ttl) if ttl else None
    private, public = C.ensure_key(C.config_dir())
    body = C.request_body(tenant_name, role.value, project, public, seconds)
    name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
    context = C.context_name(tenant_name, role.value, project)
    target = file or kubeconfig_path(ctx.obj["kubeconfig"])

    if revoke:

        async def revoke_it(kube: Kube) -> None:
            await kube.merge_patch("kubeconfigrequests", ns, name, {"spec": {"revoked": True}})

        run(ctx, revoke_it)
        if target.exists():
            kept, found = C.remove(yaml.safe_load(target.read_text()) or {}, context)
            if found:
                _write_kubeconfig(target, kept)
        out().print(
            f"revoked KubeConfigRequest {ns}/{name}; context {context} removed", markup=False
        )
        return

    async def obtain(kube: Kube) -> str:
        kcr = P("get", "kubeconfigrequests", GROUP, namespace=ns, name=name)
        try:
            existing = await guarded(
                kube.custom.get_namespaced_custom_object(
                    GROUP, VERSION, ns, "kubeconfigrequests", name
                ),
                kcr,
            )
        except api_exception() as exc:
            if exc.status != 404:
                raise
            existing = None
        if existing is None:
            await guarded(
                kube.custom.create_namespaced_custom_object(
                    GROUP, VERSION, ns, "kubeconfigrequests", body
                ),
                P("create", "kubeconfigrequests", GROUP, namespace=ns),
            )
        elif patch := C.spec_drift(existing, body):
            await kube.merge_patch("kubeconfigrequests", ns, name, patch)
        deadline = asyncio.get_running_loop().time() + timeout
        with err().status(f"waiting for KubeConfigRequest {ns}/{name}") as spinner:
            while True:
                obj = await guarded(
                    kube.custom.get_namespaced_custom_object(
                        GROUP, VERSION, ns, "kubeconfigrequests", name
                    ),
                    kcr,
                )
                done, why = C.delivered(obj)
                if done:
                    return str(obj["status"]["kubeconfig"])
                spinner.update(f"waiting for KubeConfigRequest {ns}/{name}: {why}")
                if asyncio.get_running_loop().time() > deadline:
                    raise CliError(f"timed out after {timeout:g}s: {why}")
                await asyncio.sleep(0.5)

    sealed = run(ctx, obtain)
    try:
        plain = yaml.safe_load(open_sealed(sealed, private))
    except ValueError as exc:
        fail(f"cannot decrypt the kubeconfig: {exc}")
        raise typer.Exit(1) from None
    renamed = C.rename_context(plain, context)
    if file is not None:
        _write_kubeconfig(file, renamed)
    else:
        existing = yaml.safe_load(target.read_text()) if target.exists() else None
        _write_kubeconfig(target, C.merge(existing, renamed, use=use))
    out().print(
        f"context {context} written to {target}"
        + ("" if use or file else f" (use it: kubectl config use-context {context})"),
        highlight=False,
    )


def _write_kubeconfig(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, default_flow_style=False, sort_keys=False)


@app.command()
def doctor(
    ctx: typer.Context,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Where the operator runs")
    ] = "kubenova-system",
    output: OutputOpt = Output.table,
) -> None:
    """Check the install: CRDs, operator ready and leader, the APIService, Capsule,
    KubeVela, capsule-proxy, versions; and say what to fix."""

    from . import doctor as D  # the client library: imported when used

    async def work(kube: Kube) -> list[dict[str, Any]]:
        return await D.gather(kube, namespace)

    checks = run(ctx, work)
    emit(checks, output, lambda: R.doctor_table(checks))
    if any(c["status"] == "fail" for c in checks):
        raise typer.Exit(1)


@app.command()
def keygen(
    private_key: Annotated[
        Path | None,
        typer.Option(help="Where to write it (0600; default ~/.config/kubenova/...)"),
    ] = None,
) -> None:
    """Make an X25519 key pair for encrypted kubeconfigs; prints the public key."""
    path = private_key or C.config_dir() / C.KEY_FILE
    if private_key is None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        public = C.write_private_key(path)
    except CliError as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    sys.stdout.write(public)


@app.command()
def decrypt(
    private_key: Annotated[
        Path | None, typer.Option(help="The private key (default ~/.config/kubenova/...)")
    ] = None,
) -> None:
    """Decrypt a KubeConfigRequest's status.kubeconfig, read from stdin."""
    path = private_key or C.config_dir() / C.KEY_FILE
    try:
        plaintext = open_sealed(sys.stdin.read().strip(), path.read_bytes())
    except (ValueError, OSError) as exc:
        fail(f"cannot decrypt: {exc or type(exc).__name__}")
        raise typer.Exit(1) from None
    sys.stdout.write(plaintext.decode())


def main(argv: list[str] | None = None) -> int:
    """Entry point of `kubectl-kubenova` and `kubenova`: returns the exit code."""
    try:
        code = app(args=argv, prog_name="kubectl-kubenova", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    return code if isinstance(code, int) else 0


COMPLETE_VAR = "_KUBECTL_KUBENOVA_COMPLETE"
NO_FILE_COMPLETION = 4  # cobra.ShellCompDirectiveNoFileComp


def kubectl_complete(argv: list[str] | None = None) -> int:
    """`kubectl_complete-kubenova ARGS... INCOMPLETE`: completions for `kubectl kubenova`
    inside kubectl's own shell completion (kubectl >= 1.26 runs this executable and
    reads one completion per line, then `:<cobra directive>`). The completions are
    Typer's, asked for as bash would."""
    words = list(sys.argv[1:] if argv is None else argv) or [""]
    env = {
        COMPLETE_VAR: "complete_bash",
        "COMP_WORDS": shlex.join(["kubectl-kubenova", *words]),
        "COMP_CWORD": str(len(words)),
    }
    saved = {k: os.environ.get(k) for k in env}
    buffer = io.StringIO()
    try:
        os.environ.update(env)
        with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
            main([])  # Typer answers the completion request and exits
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    completions = [line for line in buffer.getvalue().splitlines() if line]
    for line in completions:
        print(line)
    print(f":{NO_FILE_COMPLETION if completions else 0}")
    return 0
