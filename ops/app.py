"""The composition root: settings → bus → projections → handlers, wired in one place."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats.errors
import structlog
from nats.aio.client import Client

from ops.bus import connect, ensure_streams
from ops.server import EmbeddedServer, ServerError
from ops.settings import Settings
from projections.eventstore import EventStore

if TYPE_CHECKING:  # the handlers, the wiring and SQLite: imported where used (a fast `status`)
    from handlers.runtime import HandlerSpec
    from ops.wiring import StageWiring
    from projections.runner import ProjectionRunner

log = structlog.get_logger(__name__)


class ConnectError(RuntimeError):
    """No NATS to talk to: the message says what was tried."""


def url_file(settings: Settings) -> Path:
    return settings.state_dir / "nats.url"


class ProjectorLock:
    """An exclusive lock on the state folder's projections.db: one projector writes it.

    `ringloop up` holds it for its lifetime; other commands that would write the file
    check `projector_owner` first and read a copy instead while someone holds it.
    """

    def __init__(self, settings: Settings) -> None:
        self.path = settings.state_dir / "projector.lock"
        self._handle: Any = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"{socket.gethostname()} pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n"
        )
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def projector_owner(settings: Settings) -> str | None:
    """Who holds the projector lock of this state folder (None when nobody does)."""
    lock = ProjectorLock(settings)
    if lock.acquire():
        lock.release()
        return None
    return lock.path.read_text().strip() or "another process"


@dataclass
class App:
    """A live connection to the bus plus the read models this process keeps."""

    settings: Settings
    nc: Client
    store: EventStore
    server: EmbeddedServer | None = None
    url: str = ""  # the URL(s) this process connected to: what its children are given

    def __post_init__(self) -> None:
        self.runners: dict[str, ProjectionRunner] = {}

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls, settings: Settings, *, start_server: bool = True, setup: bool = True
    ) -> App:
        """Connect to --nats, else to this state folder's running server, else start one
        (with the state folder's authorization block, when `ringloop auth init` wrote one).

        `setup` creates or updates the streams and buckets (read-only commands and roles
        that may not, see ops.auth, pass False: they never create or change one)."""
        server = None
        url = settings.nats.url or await running_embedded_url(settings)
        if url is None:
            if not start_server:
                raise ConnectError(
                    f"no NATS URL given and no ringloop server running for {settings.state_dir}; "
                    "start one with `ringloop up` or pass --nats nats://host:port"
                )
            server = await start_embedded(settings)
            url = server.url
        try:
            nc = await connect(settings.nats, url)
            if setup:
                await ensure_streams(
                    nc.jetstream(),
                    settings.streams,
                    replicas=settings.nats.replicas,
                    lower_replicas=settings.nats.lower_replicas,
                )
        except BaseException:
            if server is not None:
                stop_embedded(settings, server)
            raise
        return cls(settings, nc, EventStore(nc), server, url)

    async def close(self) -> None:
        for runner in self.runners.values():
            await runner.stop()
        await self.nc.drain()
        if self.server is not None:
            await asyncio.to_thread(stop_embedded, self.settings, self.server)

    # ------------------------------------------------------------ read models

    def projection_runner(
        self, name: str, *, db_path: Path | str | None = None
    ) -> ProjectionRunner:
        """This process's runner for a projection (the shared SQLite file by default)."""
        from ops.wiring import PROJECTIONS
        from projections.runner import ProjectionRunner, open_db

        if name not in self.runners:
            path = db_path if db_path is not None else self.settings.projections_db
            self.runners[name] = ProjectionRunner(PROJECTIONS[name](), self.store, open_db(path))
        return self.runners[name]

    async def refresh(self, name: str, timeout: float = 30.0) -> None:
        """Bring a read model up to the end of its stream as it is now."""
        runner = self.runners[name]
        last = await self.store.last_seq(runner.projection.stream)
        await runner.wait_for(last, timeout)

    # ------------------------------------------------------------ stages

    def stage(self, name: str, *, views_db: Path | str | None = None) -> StageWiring:
        """A stage of handlers.REACTIONS bound to this process (ops.wiring builds it)."""
        from ops.wiring import StageWiring

        return StageWiring(self, name, views_db)

    def handler_spec(self, name: str, *, views_db: Path | str | None = None) -> HandlerSpec:
        """The consumer of a stage that has exactly one reaction (e.g. elo-rater)."""
        specs = self.stage(name, views_db=views_db).specs()
        if len(specs) != 1:
            raise ValueError(
                f"stage {name!r} has {len(specs)} consumers; use App.stage(...).specs()"
            )
        return specs[0]

    def start_views(self, names: list[str], views_db: Path | str | None) -> None:
        """Follow the views in this process. A fresh in-memory view (a handler process of
        its own) starts from the projector's snapshot when one passes the checks."""
        from projections.runner import in_memory
        from projections.snapshot import start_view

        for name in names:
            runner = self.projection_runner(name, db_path=views_db)
            if not runner.following:
                fresh = not runner.position and in_memory(runner.db)
                use_snapshot = fresh and self.settings.snapshots.enabled
                runner.start(functools.partial(start_view, use_snapshot=use_snapshot))


async def start_embedded(settings: Settings) -> EmbeddedServer:
    """Start this state folder's server, dying with this process, and announce its URL.

    Spawned from the event loop's thread (the one whose death signals it: PR_SET_PDEATHSIG
    follows the thread), recorded for a rerun to end if this process is killed."""
    from ops import auth
    from ops.processes import record

    server = EmbeddedServer(
        settings.nats_store_dir,
        port=settings.nats.port or previous_port(settings),
        sync_always=settings.nats.sync_interval == "always",
        die_with_parent=True,
        extra_config=auth.server_config(settings.state_dir),
    )
    server.spawn()
    await asyncio.to_thread(server.wait_ready)
    if server.pid is not None:
        record(settings.state_dir, "nats-server", server.pid)
    url_file(settings).write_text(server.url)
    return server


async def restart_embedded(settings: Settings, server: EmbeddedServer) -> float:
    """Start a server that died again on its port and store; returns the seconds it took."""
    from ops.processes import forget, record

    began = time.monotonic()
    if server.pid is not None:
        forget(settings.state_dir, "nats-server", server.pid)
    server.spawn()
    await asyncio.to_thread(server.wait_ready)
    if server.pid is not None:
        record(settings.state_dir, "nats-server", server.pid)
    url_file(settings).write_text(server.url)
    return time.monotonic() - began


def previous_port(settings: Settings) -> int:
    """The port an earlier server of this state folder used, if it is free now (so clients
    and children of a killed `up` find the rerun's server at the same URL); else 0."""
    try:
        port = int(url_file(settings).read_text().strip().rpartition(":")[2])
    except (OSError, ValueError):
        return 0
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nats-server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def stop_embedded(settings: Settings, server: EmbeddedServer) -> None:
    """Stop our server; its nats.url goes only if it still names this server."""
    from ops.processes import forget

    pid = server.pid
    server.stop()
    if pid is not None:
        forget(settings.state_dir, "nats-server", pid)
    path = url_file(settings)
    try:
        if path.read_text().strip() == server.url:
            path.unlink()
    except FileNotFoundError:
        pass


async def running_embedded_url(settings: Settings) -> str | None:
    path = url_file(settings)
    if not path.exists():
        return None
    url = path.read_text().strip()
    host, _, port = url.removeprefix("nats://").partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return url
    except (OSError, ValueError):
        return None


__all__ = ["App", "ConnectError", "ServerError", "nats"]
