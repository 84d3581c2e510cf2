"""A handler process for crash tests: echoes DaemonHeartbeat(daemon='echo-in') slowly.

Usage: slow_echo_handler.py NATS_URL MARKER_DIR [crash-after-append]
Writes MARKER_DIR/started-<pid> when it begins an event, so a test can SIGKILL it mid-event.
With 'crash-after-append' it kills itself right after appending its output and before
acknowledging the input: the worst moment for exactly-once output.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from events import DaemonHeartbeat, Event, Producer
from handlers.runtime import HandlerRuntime, HandlerSpec, Result
from ops.bus import connect
from ops.settings import NatsSettings
from projections.eventstore import EventStore


def echo(event: Event, marker: Path) -> list[Event]:
    if not isinstance(event, DaemonHeartbeat) or event.daemon != "echo-in":
        return []
    (marker / f"started-{os.getpid()}").write_text(event.event_id)
    time.sleep(1.5)  # long work; the runtime heartbeats in_progress meanwhile
    return [
        event.caused(DaemonHeartbeat, "echo", daemon="echo-out", producer=Producer.current("echo"))
    ]


class CrashAfterAppend(HandlerRuntime):
    async def _append(self, result: Result) -> None:
        await super()._append(result)
        if result:  # an echo, not an ignored event (an earlier test's echo-out left pending)
            os.kill(os.getpid(), signal.SIGKILL)


async def main(url: str, marker: Path, crash: bool) -> None:
    nc = await connect(NatsSettings(), url)
    spec = HandlerSpec(
        name="slow-echo",
        subjects=("loop.system.heartbeat",),
        handle=lambda event: echo(event, marker),
        ack_wait=2.0,
        blocking=True,
    )
    runtime = (CrashAfterAppend if crash else HandlerRuntime)(spec, EventStore(nc))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, runtime.stop)
    await runtime.run()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), len(sys.argv) > 3))
