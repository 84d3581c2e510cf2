"""Live `ringloop tail` as its own process: it says it follows, says when it is waiting, and
exits naming the loss when its NATS server goes away."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import nats

from ops.bus import ensure_streams
from ops.commands.tail import SERVER_GONE_S, WAITING_NOTE_S
from ops.server import EmbeddedServer
from ops.settings import StreamSettings
from tests.conftest import repo_root


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


async def _set_up(url: str) -> None:
    """The loop's streams, as `ringloop up` creates them (tail is read-only: it never does)."""
    nc = await nats.connect(url)
    try:
        await ensure_streams(nc.jetstream(), StreamSettings(), replicas=1)
    finally:
        await nc.close()


def _wait_for(lines: queue.Queue[str], fragment: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        if fragment in line:
            return line


def test_live_tail_says_it_waits_and_exits_when_the_server_goes_away(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "store")
    server.start()
    asyncio.run(_set_up(server.url))
    command = [sys.executable, "-m", "ops", "tail", "loop.>", "--nats", server.url,
               "--state-dir", str(tmp_path / "state")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    process = subprocess.Popen(command, cwd=repo_root(), env=env, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True).start()
    try:
        assert "live from seq 1" in _wait_for(lines, "ringloop tail: following 'loop.>'", 60)
        assert "none for" in _wait_for(lines, "waiting for events on 'loop.>'", WAITING_NOTE_S + 30)
        server.stop()
        _wait_for(lines, "the NATS server went away", SERVER_GONE_S + 30)
        assert process.wait(30) == 1
    finally:
        if process.poll() is None:
            process.kill()
        server.stop()
