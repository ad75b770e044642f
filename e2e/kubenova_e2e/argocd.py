"""What Argo CD shows as the health of Kubenova's objects, from the health scripts in
examples/gitops/argocd/argocd-cm-patch.yaml run by the Lua runtime Argo CD embeds
(github.com/yuin/gopher-lua, in the `argolua` peer, e2e/argolua): the scripts Argo CD
would run, the interpreter it would run them in, the libraries it opens.

`health(objects)` answers one `Health` per object (status Healthy, Progressing,
Degraded, Suspended, Missing or Unknown, and the message Argo CD would display).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .build import REPO, argolua_binary

__all__ = ["ARGOCD_CM_PATCH", "Health", "HealthScriptError", "health", "health_scripts"]

ARGOCD_CM_PATCH = REPO / "examples" / "gitops" / "argocd" / "argocd-cm-patch.yaml"
HEALTH_KEY = "resource.customizations.health.{group}_{kind}"


class HealthScriptError(RuntimeError):
    """The runtime failed, or a script raised an error (Argo CD would show the error)."""


@dataclass(frozen=True)
class Health:
    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.status}: {self.message}" if self.message else self.status


def health_scripts(path: Path = ARGOCD_CM_PATCH) -> dict[str, str]:
    """The health scripts of the ConfigMap patch, by `<group>_<kind>`."""
    data = yaml.safe_load(path.read_text())["data"]
    prefix = "resource.customizations.health."
    return {
        key.removeprefix(prefix): value for key, value in data.items() if key.startswith(prefix)
    }


def _key(obj: dict[str, Any]) -> str:
    group = str(obj["apiVersion"]).split("/")[0]
    return f"{group}_{obj['kind']}"


def health(objects: list[dict[str, Any]], *, path: Path = ARGOCD_CM_PATCH) -> list[Health]:
    """Argo CD's verdict on each object (as read from the API server)."""
    if not objects:
        return []
    scripts = health_scripts(path)
    missing = {_key(o) for o in objects} - set(scripts)
    if missing:
        raise HealthScriptError(f"no health script for {sorted(missing)} in {path}")
    items = [{"script": scripts[_key(o)], "object": o} for o in objects]
    result = subprocess.run(
        [str(argolua_binary())],
        input=json.dumps(items, default=str),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise HealthScriptError(f"argolua exited {result.returncode}: {result.stderr.strip()}")
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(answers) != len(objects):
        raise HealthScriptError(f"{len(answers)} answers for {len(objects)} objects")
    out = []
    for obj, answer in zip(objects, answers, strict=True):
        if answer.get("error"):
            raise HealthScriptError(
                f"{obj['kind']}/{obj['metadata'].get('name')}: {answer['error']}"
            )
        out.append(Health(answer["status"], answer.get("message", "")))
    return out
