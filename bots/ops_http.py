"""Operations endpoints every serving mode offers: ``/healthz``, ``/readyz`` and ``/metrics``.

- ``/healthz``: the process and its event loop answer (liveness; restart when it fails);
- ``/readyz``: 200 once the index and models are loaded, 503 before (route traffic when 200);
- ``/metrics``: Prometheus text format from the process's own :class:`core.metrics.Metrics`.

Slack in HTTP mode adds these routes to its Events API server; every mode can also serve them
on their own port (``ASKDESK_OPS_PORT``), which is how Socket Mode and Telegram polling, which
listen on no port of their own, expose them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from core.errors import ConfigError
from core.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)


@dataclass
class OpsState:
    """What the endpoints report: the metrics registry and whether the models are loaded."""

    metrics: Metrics = field(default_factory=Metrics)
    ready: bool = False
    platforms: tuple[str, ...] = ()


def add_ops_routes(app: web.Application, state: OpsState) -> None:
    """Add ``/healthz``, ``/readyz`` and ``/metrics`` to an aiohttp application."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        body = {"ready": state.ready, "platforms": list(state.platforms)}
        return web.json_response(body, status=200 if state.ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        # Content-Type carries a charset parameter aiohttp wants apart from the type.
        content_type, _, params = CONTENT_TYPE.partition(";")
        return web.Response(body=state.metrics.render(), content_type=content_type.strip(),
                            charset=params.split("=", 1)[-1].strip() or "utf-8")

    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)])


async def start_ops_server(state: OpsState, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the operations endpoints on ``host:port``; the runner (``cleanup()`` stops it) and bound port."""
    app = web.Application(client_max_size=1024)
    add_ops_routes(app, state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"Cannot listen on {host}:{port} for /healthz and /metrics ({exc.strerror}); "
                          "choose another ASKDESK_OPS_PORT.") from None
    server = site._server  # noqa: SLF001 - aiohttp has no public accessor for the bound port
    bound = server.sockets[0].getsockname()[1] if server is not None and server.sockets else port
    log.info("ops: /healthz, /readyz and /metrics on http://%s:%s", host, bound)
    return runner, int(bound)


__all__ = ["OpsState", "add_ops_routes", "start_ops_server"]
