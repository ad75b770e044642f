"""JSON log lines for kopf's per-object records (found running the image: its default
format is JSON, and kopf passes its OperatorSettings along with every such record)."""

from __future__ import annotations

import json
import logging

import kopf
from kopf._core.actions.loggers import ObjectLogger

from kubenova_operator.observability.logs import json_formatter


def test_a_kopf_object_record_becomes_one_json_line() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    base = logging.getLogger("kopf.objects")
    keep = Keep()
    base.addHandler(keep)
    try:
        body = kopf.Body({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
        ObjectLogger(body=body, settings=kopf.OperatorSettings()).warning("Handler failed.")
    finally:
        base.removeHandler(keep)
    (record,) = records
    line = json.loads(json_formatter().format(record))
    assert line["message"] == "Handler failed."
    assert line["level"] == "WARNING"
    assert line["k8s_ref"]["name"] == "a"
    assert "settings" not in line and "k8s_skip" not in line
