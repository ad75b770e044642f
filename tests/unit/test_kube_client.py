"""The dynamic client hands refusals back as Status objects: they must raise; and the
in-cluster connection (the ServiceAccount mount and the environment's API server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubenova_operator.kube.client import (
    checked,
    in_cluster,
    in_cluster_server,
    service_account_login,
    without_environment,
)


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


def test_in_cluster_only_without_a_kubeconfig() -> None:
    assert in_cluster({"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert not in_cluster({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": "/k"})
    assert not in_cluster({})


def test_in_cluster_server_is_the_environments_not_cluster_dns() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    assert in_cluster_server(env) == "https://10.0.0.1:6443"
    assert in_cluster_server({"KUBERNETES_SERVICE_HOST": "fd00::1"}) == "https://[fd00::1]:443"


def test_service_account_login_reads_the_mounted_token_each_time(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("kubenova-system")
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "34567"}
    info = service_account_login(tmp_path, env)
    assert info.server == "https://127.0.0.1:34567"
    assert info.as_http_headers() == {"Authorization": "Bearer first"}
    assert info.ca_path == str(tmp_path / "ca.crt")
    assert info.default_namespace == "kubenova-system"
    # The kubelet rewrote the projected token: the next login (after a 401) uses it.
    (tmp_path / "token").write_text("second")
    assert service_account_login(tmp_path, env).token == "second"


async def test_the_operators_session_reads_no_netrc_or_proxy_from_the_environment() -> None:
    """Each request of kubernetes-asyncio's default session looked for a ~/.netrc and
    an environment proxy in a thread; the operator's own session does not, and keeps
    the connection pool (and its limit) it was given."""
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:6443"
    api = client.ApiClient(configuration)
    before = api.rest_client.pool_manager
    pool = before.connector
    assert before.trust_env  # what kubernetes-asyncio does (why this exists)
    without_environment(api)
    session = api.rest_client.pool_manager
    assert not session.trust_env
    assert session.connector is pool
    assert pool is not None and pool.limit == configuration.connection_pool_maxsize
    assert before.closed and not session.closed and not pool.closed
    await api.close()
    assert pool.closed
