"""Structured logs.

JSON by default (one object a line, for Loki/Elasticsearch/Cloud Logging); kopf's
per-object loggers add `k8s_ref` (the object being handled) as an extra field, which
the JSON formatter keeps. Text for a developer's terminal.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            )
        )
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
