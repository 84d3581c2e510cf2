"""Handler processes killed with SIGKILL mid-event: the input is redelivered, output once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from events import LOG_STREAM, DaemonHeartbeat
from ops.app import App
from ops.server import EmbeddedServer

SCRIPT = Path(__file__).parent / "procs" / "slow_echo_handler.py"


def spawn(server: EmbeddedServer, marker: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(SCRIPT), server.url, str(marker), *extra])


async def wait_until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not await predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def echo_outputs(app: App, input_id: str) -> list[DaemonHeartbeat]:
    stored = await app.store.read_all(LOG_STREAM, "loop.system.heartbeat")
    return [
        s.event for s in stored if s.event.causation_id == input_id and s.event.daemon == "echo-out"
    ]  # type: ignore[attr-defined, misc]


@pytest.mark.parametrize("crash_point", ["mid-event", "after-append-before-ack"])
async def test_sigkilled_handler_redelivers_and_outputs_once(
    app: App, nats_server: EmbeddedServer, tmp_path: Path, crash_point: str
) -> None:
    marker = tmp_path / "marker"
    marker.mkdir()
    extra = ("crash",) if crash_point == "after-append-before-ack" else ()
    first = spawn(nats_server, marker, *extra)
    incoming = DaemonHeartbeat(daemon="echo-in")
    await app.store.append(incoming)

    async def started() -> bool:
        return (marker / f"started-{first.pid}").exists()

    await wait_until(started)
    if crash_point == "mid-event":
        first.send_signal(signal.SIGKILL)
    await asyncio.to_thread(first.wait, 15)
    assert first.returncode == -signal.SIGKILL
    assert len(await echo_outputs(app, incoming.event_id)) == (1 if extra else 0)

    second = spawn(nats_server, marker)
    try:

        async def redelivered() -> bool:
            return (marker / f"started-{second.pid}").exists()

        await wait_until(redelivered)  # the input came back after ack_wait

        async def answered() -> bool:
            return len(await echo_outputs(app, incoming.event_id)) >= 1

        await wait_until(answered)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 15)
    assert second.returncode == 0  # SIGTERM drained cleanly
    outputs = await echo_outputs(app, incoming.event_id)
    assert len(outputs) == 1
    info = await app.store.js.consumer_info(LOG_STREAM, "slow-echo")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_sigterm_mid_event_finishes_the_event_then_exits(
    app: App, nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.mkdir()
    process = spawn(nats_server, marker)
    incoming = DaemonHeartbeat(daemon="echo-in")
    await app.store.append(incoming)

    async def started() -> bool:
        return (marker / f"started-{process.pid}").exists()

    await wait_until(started)
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 15)
    assert process.returncode == 0
    assert len(await echo_outputs(app, incoming.event_id)) == 1
    info = await app.store.js.consumer_info(LOG_STREAM, "slow-echo")
    assert info.num_ack_pending == 0  # acked before exit; only its own output is pending
