"""/healthz and /readyz for the kubelet, served whether or not this replica leads.

Healthy means the event loop answers. Ready means able to serve: every replica runs
kopf's watches, keeps its own stores and serves the aggregated API from them, leader
or standby; only the leader's passes write. So /readyz does not depend on leadership,
the Service routes the API group to every ready replica, and a rolling update or a
failover never leaves it without a backend.
"""

from __future__ import annotations

from aiohttp import web

from .metrics import LEADER


class Leadership:
    """Whether this replica currently runs the controllers (gauge kubenova_leader)."""

    leading = False

    @classmethod
    def set(cls, leading: bool) -> None:
        cls.leading = leading
        LEADER.set(1 if leading else 0)


class Serving:
    """Whether this replica's stores are primed and its aggregated API is up."""

    ready = False

    @classmethod
    def set(cls, ready: bool) -> None:
        cls.ready = ready


async def start_health_server(address: str, port: int) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        role = "leader" if Leadership.leading else "standby"
        return web.json_response({"status": "ok", "role": role})

    async def readyz(_: web.Request) -> web.Response:
        role = "leader" if Leadership.leading else "standby"
        if Serving.ready:
            return web.json_response({"status": "ok", "role": role})
        return web.json_response({"status": "starting", "role": role}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner
