"""Structured logs.

JSON by default (one object a line, for Loki/Elasticsearch/Cloud Logging); kopf's
per-object loggers add `k8s_ref` (the object being handled) as an extra field, which
the JSON formatter keeps. Text for a developer's terminal.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# kopf's per-object loggers also pass the whole OperatorSettings (a dataclass holding a
# queue, which the JSON formatter cannot copy: every such record became a "Logging
# error" traceback instead of a line) and its own k8s_skip flag: not for the log.
KOPF_INTERNAL_EXTRAS = ("settings", "k8s_skip")


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, *KOPF_INTERNAL_EXTRAS],
    )


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The HTTP client logs each request at DEBUG with its headers (bearer tokens
    # included): keep it quiet whatever the operator's level.
    for noisy in ("aiohttp", "kubernetes_asyncio", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kopf logs every handler run ("Handler 'x' succeeded") at INFO: one line per watch
    # event. Our own controllers log what matters; kopf's detail stays for DEBUG.
    if root.level > logging.DEBUG:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        # Except when a watch-stream starts, stops or restarts (a 410 Gone: its
        # resourceVersion expired, and kopf lists afresh): rare, and what an operator's
        # operator wants to see after an API server or etcd restart.
        logging.getLogger("kopf._cogs.clients.watching").setLevel(logging.DEBUG)
