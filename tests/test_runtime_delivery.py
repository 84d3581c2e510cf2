"""The runtime's delivery contract (README, "Handler runtime"): an arbitrary error is nak'ed with a
growing delay and dead-lettered after max_deliver; a ValueError or an undecodable input is
dead-lettered at once; either way the consumer ends with nothing pending and the input once in
the dead letters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from events import LOG_STREAM, DaemonHeartbeat, Event, HandlerFailed
from handlers.runtime import HandlerRuntime, HandlerSpec, run_until_stopped
from ops.app import App

DELAYS = (0.3, 1.2)  # short enough for a test, far apart enough to tell the steps apart


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def dead_letters(app: App, stage: str) -> list[HandlerFailed]:
    stored = await app.store.read_all(LOG_STREAM, f"loop.dlq.{stage}")
    return [s.event for s in stored]  # type: ignore[misc]


class Running:
    """One HandlerRuntime running in the background for the duration of a `with` block."""

    def __init__(self, app: App, spec: HandlerSpec) -> None:
        self.runtime = HandlerRuntime(spec, app.store)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HandlerRuntime:
        await self.runtime.ensure_consumer()
        self.task = asyncio.create_task(run_until_stopped([self.runtime], self.stop))
        return self.runtime

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)


def spec(name: str, handle: Callable[[Event], None], **extra: object) -> HandlerSpec:
    return HandlerSpec(
        name=name,
        stage=name,
        subjects=("loop.system.heartbeat",),
        handle=handle,
        ack_wait=30.0,
        nak_delays=DELAYS,
        deliver_new_only=True,
        **extra,  # type: ignore[arg-type]
    )


async def test_arbitrary_error_is_retried_with_growing_delay_then_dead_lettered(app: App) -> None:
    calls: list[float] = []
    wanted = DaemonHeartbeat(daemon="flaky-input")

    def handle(event: Event) -> None:
        if getattr(event, "daemon", None) == wanted.daemon:
            calls.append(time.monotonic())
            raise RuntimeError(f"broken downstream while handling {event.event_id}")

    async with Running(app, spec("flaky", handle, max_deliver=3)) as runtime:
        await app.store.append(wanted)
        await wait_for(lambda: _has_dead_letter(app, "flaky"))
        info = await app.store.js.consumer_info(LOG_STREAM, "flaky")
    assert len(calls) == 3  # max_deliver deliveries, then no more
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= DELAYS[0] and gaps[1] >= DELAYS[1] > gaps[0]  # each nak waits longer
    [failed] = await dead_letters(app, "flaky")
    assert failed.error_type == "RuntimeError" and wanted.event_id in failed.error
    assert failed.deliveries == 3 and failed.input_event_id == wanted.event_id
    assert failed.input_subject == wanted.subject() and failed.causation_id == wanted.event_id
    assert runtime.failed == 1 and runtime.processed == 0
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_value_error_is_dead_lettered_on_the_first_delivery(app: App) -> None:
    calls: list[str] = []
    wanted = DaemonHeartbeat(daemon="poison-input")

    def handle(event: Event) -> None:
        if getattr(event, "daemon", None) == wanted.daemon:
            calls.append(event.event_id)
            raise ValueError(f"bad field in {event.event_id}")

    async with Running(app, spec("poisoned", handle, max_deliver=5)) as runtime:
        await app.store.append(wanted)
        await wait_for(lambda: _has_dead_letter(app, "poisoned"))
        info = await app.store.js.consumer_info(LOG_STREAM, "poisoned")
    assert calls == [wanted.event_id]  # never retried
    [failed] = await dead_letters(app, "poisoned")
    assert failed.error_type == "ValueError" and failed.deliveries == 1
    assert failed.input_event_id == wanted.event_id
    assert runtime.failed == 1
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_undecodable_input_is_dead_lettered_and_never_reaches_the_handler(app: App) -> None:
    calls: list[Event] = []
    good = DaemonHeartbeat(daemon="after-garbage")
    async with Running(app, spec("decoder", calls.append)) as runtime:
        garbage = b'{"type": "system.daemon_heartbeat", "version": 1, "daemon": 7'
        ack = await app.store.js.publish("loop.system.heartbeat", garbage, stream=LOG_STREAM)
        await app.store.append(good)
        await wait_for(lambda: _has_dead_letter(app, "decoder"))
        await wait_for(lambda: _async_true(good.event_id in {e.event_id for e in calls}))
    [failed] = await dead_letters(app, "decoder")
    assert failed.error_type == "EventDecodeError" and failed.input_seq == ack.seq
    assert failed.input_excerpt == garbage.decode() and failed.input_event_id is None
    assert [e.event_id for e in calls] == [good.event_id]  # the garbage never reached it
    assert runtime.failed == 1 and runtime.processed == 1


async def _has_dead_letter(app: App, stage: str) -> bool:
    return bool(await dead_letters(app, stage))


async def _async_true(value: bool) -> bool:
    return value
