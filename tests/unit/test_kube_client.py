"""The dynamic client hands refusals back as Status objects: they must raise."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from kubenova_operator.kube.client import checked


def test_a_failure_status_raises_with_the_api_servers_message() -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": 'namespaces "x-blocked" is forbidden: not allowed',
        "reason": "Forbidden",
        "code": 403,
    }
    with pytest.raises(ApiException) as raised:
        checked(status)
    assert raised.value.status == 403
    assert json.loads(raised.value.body or b"{}")["message"].endswith("not allowed")


def test_objects_and_success_statuses_pass_through() -> None:
    obj = {"kind": "Namespace", "metadata": {"name": "n"}}
    assert checked(obj) == obj
    assert checked({"kind": "Status", "status": "Success"})["status"] == "Success"
