"""A startup that an API server cuts short (restarting mid-response) is retried by
kopf with a new client: the failed try's client is closed, not left open."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
from kubernetes_asyncio import client

import kubenova_operator.__main__ as main
from kubenova_operator.kube import client as kube_client
from kubenova_operator.kube.client import Kube


@pytest.fixture
async def cutting_server() -> AsyncIterator[str]:
    """An HTTP server that starts every answer as a chunked 200 and hangs up in the
    middle of its first chunk: what a client sees of an API server killed mid-response."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n400\r\n{"kind": "APIVersions", '
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_discovery_cut_short_closes_the_client(
    cutting_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[client.ApiClient] = []

    async def api_client() -> client.ApiClient:
        api = client.ApiClient(client.Configuration(host=cutting_server))
        made.append(api)
        return api

    folders: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def made_folder(**kwargs: Any) -> str:
        folders.append(mkdtemp(**kwargs))
        return folders[-1]

    monkeypatch.setattr(kube_client, "api_client", api_client)
    monkeypatch.setattr(tempfile, "mkdtemp", made_folder)
    with pytest.raises(aiohttp.ClientPayloadError):
        await Kube.connect()
    assert len(made) == 1
    assert made[0].rest_client.pool_manager.closed
    # No discovery cache folder is left behind by the failed try.
    assert len(folders) == 1 and not Path(folders[0]).exists()  # noqa: ASYNC240


async def test_a_startup_cut_short_closes_its_client(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []

    class Connected:
        async def close(self) -> None:
            closed.append(True)

    async def connect() -> Any:
        return Connected()

    async def start(*_: Any) -> None:
        raise aiohttp.ClientPayloadError("Response payload is not completed")

    monkeypatch.setattr(Kube, "connect", connect)
    monkeypatch.setattr(main, "start", start)
    memo = kopf.Memo()
    # As kopf calls its activities (the decorator's type asks for every kwarg).
    configure: Any = main.configure
    cleanup: Any = main.cleanup
    with pytest.raises(aiohttp.ClientPayloadError):
        await configure(settings=kopf.OperatorSettings(), memo=memo)
    assert closed == [True]
    # No Context was left for the handlers or the cleanup: the retry builds its own.
    assert getattr(memo, "context", None) is None
    await cleanup(memo=memo)
