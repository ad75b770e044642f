"""A Project as KubeVela sees it: the Kubernetes-side footprint of a VelaUX project,
and the project's default delivery Workflow.

VelaUX keeps its projects in its own database; what it leaves in the cluster is
namespace labels (`namespace.oam.dev/env`, `usage.oam.dev/control-plane=env`) and, in
each namespace, a RoleBinding of the group `kubevela:project:<project>` to the
ClusterRole `kubevela:writer:application`. Kubenova reproduces that footprint, so
VelaUX (and `vela env ls`) sees each environment, and binds the project's app users
to the same role.
"""

from __future__ import annotations

from typing import Any

from ..api.project import ProjectSpec, project_namespaces
from ..kube.kinds import POLICY, WORKFLOW
from . import labels as L
from .rbac import role_binding

VELA_ENV_LABEL = "namespace.oam.dev/env"
VELA_USAGE_LABEL = "usage.oam.dev/control-plane"
VELA_WRITER_ROLE = "kubevela:writer:application"
PROMOTE_WORKFLOW = "kubenova-promote"
DEFAULT_ENV = "default"


def project_group(project: str) -> str:
    """The group VelaUX puts a project's members in."""
    return f"kubevela:project:{project}"


def env_name(project: str, environment: str | None) -> str:
    """The KubeVela env of a namespace: `<project>-<env>` (env names are per cluster in
    KubeVela, so the project name keeps two projects' `prod` apart)."""
    return f"{project}-{environment or DEFAULT_ENV}"


def namespace_labels(project: str, environment: str | None) -> dict[str, str]:
    return {VELA_ENV_LABEL: env_name(project, environment), VELA_USAGE_LABEL: "env"}


def project_binding(
    project: str,
    namespace: str,
    app_users: list[dict[str, str]],
    *,
    tenant: str,
    environment: str | None,
) -> dict[str, Any]:
    group = {
        "kind": "Group",
        "name": project_group(project),
        "apiGroup": "rbac.authorization.k8s.io",
    }
    return role_binding(
        VELA_WRITER_ROLE,
        namespace,
        [group, *app_users],
        tenant=tenant,
        project=project,
        environment=environment,
    )


def topology_policy_name(environment: str) -> str:
    return f"kubenova-env-{environment}"


def delivery_objects(project: str, tenant: str, spec: ProjectSpec) -> list[dict[str, Any]]:
    """The project's default delivery objects (KubeVela Policies and a Workflow, group
    core.oam.dev/v1alpha1): with two or more environments and
    spec.delivery.defaultWorkflow, in the first environment's namespace, a topology
    Policy per environment and the Workflow `kubenova-promote`, which deploys to each
    environment in order and waits for an approval (`vela workflow resume`) before
    every one after the first. Applications opt in with
    `spec.workflow.ref: kubenova-promote`.

    The revision limit (spec.delivery.revisionLimit) is not an object here: vela-core
    reads a garbage-collect policy only inline in an Application, so Kubenova applies
    the limit itself (controllers/velasync.py).
    """
    if len(spec.environments) < 2 or not spec.delivery.default_workflow:
        return []
    names = project_namespaces(tenant, project, spec)
    home, first = names[0], spec.environments[0].name
    labels = L.managed_labels(tenant, project, first)
    out: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for ns, env in zip(names, spec.environments, strict=True):
        out.append(
            {
                **POLICY.type_meta(),
                "metadata": {
                    "name": topology_policy_name(env.name),
                    "namespace": home,
                    "labels": labels,
                },
                "type": "topology",
                "properties": {"clusters": ["local"], "namespace": ns},
            }
        )
        if steps:
            steps.append({"name": f"approve-{env.name}", "type": "suspend"})
        steps.append(
            {
                "name": f"deploy-{env.name}",
                "type": "deploy",
                "properties": {"policies": [topology_policy_name(env.name)]},
            }
        )
    out.append(
        {
            **WORKFLOW.type_meta(),
            "metadata": {"name": PROMOTE_WORKFLOW, "namespace": home, "labels": labels},
            "steps": steps,
        }
    )
    return out
