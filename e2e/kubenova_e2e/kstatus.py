"""kstatus: how Flux (and anything else built on sigs.k8s.io/cli-utils) decides whether
an object is healthy, from the real library, not a re-implementation.

`compute(objects)` pipes the objects as JSON to the `kstatus` peer (e2e/kstatus, built
like the other peers) and returns one verdict per object, in order:

- Current: reconciled (Ready=True, or no conditions kstatus knows at all)
- InProgress: status.observedGeneration behind metadata.generation, Reconciling=True,
  or Ready=False/Unknown
- Failed: Stalled=True (the message is the Stalled condition's)
- Terminating: metadata.deletionTimestamp is set
- Unknown: the object could not be read (the message says why)
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from .build import kstatus_binary

__all__ = ["STATUSES", "KStatus", "KStatusError", "compute", "kstatus_binary"]

STATUSES = ("InProgress", "Failed", "Current", "Terminating", "NotFound", "Unknown")


class KStatusError(RuntimeError):
    """The kstatus binary failed or answered something other than one verdict per object."""


@dataclass(frozen=True)
class KStatus:
    status: str
    message: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.status}: {self.message}" if self.message else self.status


def compute(objects: list[dict[str, Any]], *, timeout: float = 60.0) -> list[KStatus]:
    """kstatus' verdict on each object (as read from the API server: a dict of JSON)."""
    if not objects:
        return []
    result = subprocess.run(
        [str(kstatus_binary())],
        input=json.dumps(objects, default=str),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise KStatusError(f"kstatus exited {result.returncode}: {result.stderr.strip()}")
    verdicts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(verdicts) != len(objects):
        raise KStatusError(
            f"kstatus answered {len(verdicts)} verdicts for {len(objects)} objects: "
            f"{result.stdout[:2000]}"
        )
    out = []
    for verdict in verdicts:
        if verdict.get("status") not in STATUSES:
            raise KStatusError(f"kstatus answered an unknown status: {verdict}")
        out.append(KStatus(verdict["status"], verdict.get("message", ""), verdict.get("name", "")))
    return out
