"""An ASGI app served by uvicorn inside this process's event loop (the dashboard, /metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import structlog
import uvicorn

log = structlog.get_logger(__name__)


class HttpServiceError(ValueError):
    """The address could not be bound: the message names it."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the command's handlers drain the loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpService:
    """Serves `app` on host:port (0 = a free port) until stopped; `url` once started."""

    def __init__(self, app: Any, host: str, port: int, *, name: str) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, log_level="warning",
            access_log=False, lifespan="off", timeout_graceful_shutdown=1,
        )  # fmt: skip
        self.name = name
        self.host, self.port = host, port
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.url = ""

    async def start(self) -> str:
        """Bind (a clear HttpServiceError when the address is taken), serve, return the URL."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise HttpServiceError(
                f"{self.name}: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        sock.listen(128)
        self._socket = sock
        port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve([sock]), name=f"http:{self.name}")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}/"
        log.info("http_serving", service=self.name, url=self.url)
        return self.url

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True  # open live streams would otherwise hold it
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
