"""The web app under uvicorn inside the caller's event loop.

``dutybot web`` and ``dutybot run --web`` both serve through :class:`WebServer`: webhook
routes hand updates to frontends (python-telegram-bot's Application, the WeCom callback)
whose queues and locks belong to one event loop, so the server must run in that loop, not
in a thread of its own.  Uvicorn's own signal handlers are left out: the process's
``serve`` (bot.runtime) owns SIGINT/SIGTERM and stops the server with everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("dutybot.web")


class PortTaken(OSError):
    """The address could not be bound (in use, or not allowed)."""


def _uvicorn_server(config: Any) -> Any:
    """A uvicorn Server that leaves the signals alone; uvicorn is imported only here, so
    `dutybot run` without --web does not load it."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the runtime owns the signals
            yield

    return _Server(config)


class WebServer:
    """Start, report the bound address (port 0 picks a free one), stop."""

    def __init__(self, app: Any, *, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=True,  # behind nginx: X-Forwarded-For/-Proto from the proxy
            forwarded_allow_ips="127.0.0.1",
        )
        self._server = _uvicorn_server(config)
        self._task: asyncio.Task[None] | None = None
        self.host, self.port = host, port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Returns once the socket accepts connections.  The socket is bound here, so a taken
        port is an OSError for the caller (uvicorn itself would exit the process)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise PortTaken(exc.errno, exc.strerror) from exc
        sock.set_inheritable(True)
        self.host, self.port = sock.getsockname()[:2]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise OSError(f"the web server did not start on {self.host}:{self.port}")
            await asyncio.sleep(0.01)
        log.info("web app served on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await self._task
        self._task = None
