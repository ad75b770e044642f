"""/healthz and /readyz for the kubelet, served whether or not this replica leads.

kopf's own liveness endpoint only exists while kopf runs, i.e. on the leader; a hot
standby would fail its probe and be restarted forever. This endpoint answers on every
replica: healthy means the event loop answers (and, on the leader, that kopf is up).
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


async def start_health_server(address: str, port: int) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        role = "leader" if Leadership.leading else "standby"
        return web.json_response({"status": "ok", "role": role})

    async def readyz(_: web.Request) -> web.Response:
        # Ready = serving: only the leader runs the aggregated API, so only it should
        # be behind the Service. A standby stays alive (healthz) but not ready.
        if Leadership.leading:
            return web.json_response({"status": "ok", "role": "leader"})
        return web.json_response({"status": "standby"}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner
