"""Cluster task limits bound the play stages, on a real nats-server: trainings wait for a
training slot (nak'ed, retried), selfplay workers beyond the host's limit wait to play, and
work whose lease is lost publishes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from structlog.testing import LogCapture

from events import (
    GAMES_STREAM,
    LEASES_BUCKET,
    LOG_STREAM,
    DaemonHeartbeat,
    Event,
    GameRange,
    Producer,
    TaskFinished,
    TaskRefused,
    TaskStarted,
    TrainingRequested,
)
from events.streams import games_subject
from handlers import trainer
from handlers.coordinator import TaskCoordinator
from handlers.runtime import HandlerRuntime, HandlerSpec
from handlers.selfplay import run_worker
from handlers.settings import TaskSettings
from handlers.slots import SlotBusy, SlotLost
from ops.app import App
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings
from projections.eventstore import StoredEvent
from tests.play import selfplay_range, worker
from tests.test_loop_control import eventually

CONFIG = "square8_2p"


@pytest.fixture(scope="module")
def settings(nats_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    return load_settings(
        None, state_dir=str(state), nats__url=nats_server.url, loop={"preset": "tiny"}
    )


@pytest_asyncio.fixture(scope="module")
async def games(app: App) -> AsyncIterator[GameRange]:
    yield await selfplay_range(app, CONFIG)


async def stored_on(
    app: App, subject: str, ready: Any = lambda found: bool(found), timeout: float = 20
) -> list[StoredEvent]:
    """Wait until the events on `subject` satisfy `ready`; return them."""

    async def poll() -> list[StoredEvent]:
        while not ready(found := await app.store.read_all(LOG_STREAM, subject)):
            await asyncio.sleep(0.05)
        return found

    return await asyncio.wait_for(poll(), timeout)


def of_task(stored: list[StoredEvent], task_id: str) -> StoredEvent:
    [found] = [s for s in stored if getattr(s.event, "task_id", None) == task_id]
    return found


async def test_a_second_training_waits_for_the_only_slot_and_completes_after(
    app: App, games: GameRange, monkeypatch: pytest.MonkeyPatch, error_logs_fail: LogCapture
) -> None:
    assert app.settings.loop.tasks.training == 1
    release = threading.Event()
    real_fit = trainer.fit

    def held_fit(*args: Any, **kwargs: Any) -> trainer.Fitted:
        assert release.wait(20), "the test never released the first training"
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(trainer, "fit", held_fit)
    specs = [  # two trainer processes; quick retries keep the test short
        dataclasses.replace(app.handler_spec("trainer"), nak_delays=(0.3,)) for _ in range(2)
    ]
    runtimes = [HandlerRuntime(spec, app.store) for spec in specs]
    running = [asyncio.create_task(r.run()) for r in runtimes]
    try:
        for training_id in ("train-a", "train-b"):
            request = TrainingRequested(config=CONFIG, training_id=training_id, games=games)
            await app.store.append(request)

        def training(found: list[StoredEvent]) -> list[StoredEvent]:  # not another test's
            return [s for s in found if getattr(s.event, "task_type", None) == "training"]

        [refused, *_] = training(
            await stored_on(app, "loop.task.refused", lambda found: training(found))
        )
        assert isinstance(refused.event, TaskRefused) and refused.event.task_type == "training"
        first = "train-a" if "task train-a" in (refused.event.holder or "") else "train-b"
        second = {"train-a": "train-b", "train-b": "train-a"}[first]
        release.set()
        completed = await stored_on(
            app, f"loop.training.completed.{CONFIG}", lambda found: len(found) == 2, timeout=40
        )
    finally:
        release.set()
        for runtime in runtimes:
            runtime.stop()
        await asyncio.gather(*running)
    assert {s.event.training_id for s in completed} == {"train-a", "train-b"}  # type: ignore[attr-defined]
    started = await app.store.read_all(LOG_STREAM, "loop.task.started")
    finished = await app.store.read_all(LOG_STREAM, "loop.task.finished")
    for training_id in (first, second):
        assert isinstance(of_task(started, training_id).event, TaskStarted)
        end = of_task(finished, training_id).event
        assert isinstance(end, TaskFinished) and end.outcome == "succeeded"
    # the second training started only after the first had freed the slot
    assert of_task(started, second).seq > of_task(finished, first).seq
    trainings = await app.store.read_all(LOG_STREAM, f"loop.training.started.{CONFIG}")
    second_started = [s for s in trainings if s.event.training_id == second]  # type: ignore[attr-defined]
    assert [s.seq > of_task(finished, first).seq for s in second_started] == [True]
    # waiting for the slot is logged as waiting (debug), not as a failing retry (warning)
    entries = error_logs_fail.entries
    waits = [e for e in entries if e["event"] == "handler_waiting" and "SlotBusy" in e["error"]]
    assert waits and {e["log_level"] for e in waits} == {"debug"}
    assert not [e for e in entries if e["event"] == "handler_retry" and "SlotBusy" in e["error"]]
    # ... and in place: the waiting request was never handed back, so no delivery was spent
    consumer = await app.store.js.consumer_info(LOG_STREAM, specs[0].name)
    assert consumer.num_redelivered == 0


async def test_a_training_that_lost_its_lease_publishes_nothing(
    app: App, games: GameRange, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = TaskCoordinator(app.store, app.settings.loop, Producer.current("trainer"))
    [key] = tasks.slots("training", "any-host")
    real_put = trainer.put_checkpoint

    async def put_after_losing_the_lease(*args: Any, **kwargs: Any) -> Any:
        kv = await app.store.js.key_value(LEASES_BUCKET)
        await kv.delete(key)  # as if it had expired and been freed
        return await real_put(*args, **kwargs)

    monkeypatch.setattr(trainer, "put_checkpoint", put_after_losing_the_lease)
    workspace = trainer.Workspace(app.store, app.settings.state_dir, tasks=tasks)
    request = TrainingRequested(config=CONFIG, training_id="train-lost", games=games)
    app.start_views(["registry", "pipeline", "feedback"], None)
    views = {name: app.runners[name].state for name in ("registry", "pipeline", "feedback")}
    with pytest.raises(SlotLost, match="train-lost"):
        await trainer.on_training_requested(
            request, workspace=workspace, settings=app.settings.loop,
            producer=Producer.current("trainer"), **views,
        )  # fmt: skip
    finished = await app.store.read_all(LOG_STREAM, "loop.task.finished")
    end = of_task(finished, "train-lost").event
    assert isinstance(end, TaskFinished) and end.outcome == "failed"
    done = await app.store.read_all(LOG_STREAM, f"loop.training.completed.{CONFIG}")
    assert "train-lost" not in {s.event.training_id for s in done}  # type: ignore[attr-defined]


async def test_a_selfplay_worker_beyond_the_host_limit_waits_to_play(
    app: App, error_logs_fail: LogCapture
) -> None:
    # the worker plays in a thread: a lease long enough to be renewed on a loaded machine
    limits = TaskSettings(selfplay_per_host=1, lease_ttl_s=5, renew_every_s=1)
    loop = app.settings.loop.model_copy(update={"tasks": limits})
    tasks = TaskCoordinator(app.store, loop, Producer.current("selfplay"))
    subject = games_subject(CONFIG, "selfplay")
    before = await app.store.last_seq(GAMES_STREAM, subject)
    stop = asyncio.Event()
    state_dir = app.settings.state_dir
    async with tasks.task("selfplay", "the-only-slot"):
        player = worker(app, cache=state_dir / "cache")
        running = asyncio.create_task(run_worker(player, stop, seed=1, max_batches=1, tasks=tasks))
        await stored_on(  # refused, then asked again a lease TTL later: still waiting
            app,
            "loop.task.refused",
            lambda found: sum(s.event.task_type == "selfplay" for s in found) >= 2,
            timeout=60,
        )
        assert await app.store.last_seq(GAMES_STREAM, subject) == before
        assert not running.done()
    played = await asyncio.wait_for(running, 120)
    assert played.batches == 1 and played.games == app.settings.loop.selfplay.games_per_task
    assert await app.store.last_seq(GAMES_STREAM, subject) > before
    started = await app.store.read_all(LOG_STREAM, "loop.task.started")
    finished = await app.store.read_all(LOG_STREAM, "loop.task.finished")
    assert of_task(started, played.worker_id).seq > of_task(finished, "the-only-slot").seq
    assert of_task(finished, played.worker_id).event.outcome == "succeeded"  # type: ignore[attr-defined]
    waits = [e for e in error_logs_fail.entries if e["event"] == "selfplay_waiting_for_slot"]
    assert [e["log_level"] for e in waits] == ["info"]


async def test_a_waiting_handler_asked_to_stop_hands_its_input_back_at_once(app: App) -> None:
    looks: list[str] = []

    def handle(event: Event) -> list[Event]:
        looks.append(event.event_id)
        raise SlotBusy("every slot is taken in this test")

    spec = HandlerSpec(
        name="waiter", subjects=("loop.system.heartbeat",), handle=handle,
        wait_in_place=True, nak_delays=(0.05,), deliver_new_only=True,
    )  # fmt: skip
    runtime = HandlerRuntime(spec, app.store)
    running = asyncio.create_task(runtime.run())
    await runtime.ensure_consumer()
    event = DaemonHeartbeat(daemon="waiting-test")
    await app.store.append(event)

    async def looked_often() -> bool:
        return len(looks) >= 5

    await eventually(looked_often)
    consumer = await app.store.js.consumer_info(LOG_STREAM, "waiter")
    assert consumer.num_redelivered == 0 and consumer.num_ack_pending == 1  # held, in place
    runtime.stop()
    await asyncio.wait_for(running, 10)
    assert set(looks) == {event.event_id} and runtime.processed == 0
    # nak'ed on stop: the next process gets it at once, not after ack_wait (30 s)
    taken: list[str] = []
    after = HandlerRuntime(
        dataclasses.replace(spec, handle=lambda e: taken.append(e.event_id) or []), app.store
    )
    next_process = asyncio.create_task(after.run())

    async def handed_back() -> bool:
        return after.processed == 1

    await eventually(handed_back, timeout=10)
    after.stop()
    await asyncio.wait_for(next_process, 10)
    assert taken == [event.event_id]
