"""Wiring of the play stages: factories binding selfplay, trainer and evaluator to their dependencies.

ops.loop_wiring merges PLAY_HANDLERS into ops.app's handler table, so `ringloop run
trainer` (or `evaluator`, `selfplay`) and `ringloop up` run them.

Selfplay and the evaluator's tournament work are worker loops, not reactions to one event.
Until the runtime knows about daemons, their factory starts the loop as a task beside the
HandlerSpec it returns (``spec.extra["daemon"]`` names it). It must stop before App.close
drains the connection (a pull subscription in the middle of a fetch holds the drain for
its whole timeout), so a stopper sits among ``app.runners``, which App.close stops first;
the lead is asked for a proper close hook. The selfplay spec itself consumes ModelPromoted
as a nudge to look for new weights before the next batch.

Each stage gets a TaskCoordinator, so LoopSettings.tasks bounds it cluster-wide. A trainer
or evaluator refused a slot raises SlotBusy (a Waiting): its spec waits in place, keeping
the message with in_progress heartbeats and asking again after SLOT_NAK_DELAYS (backing
off to SLOT_RETRY_S), so a request waits for a slot as long as it takes without spending
deliveries; SLOT_MAX_DELIVER bounds real failures (crashes, timeouts) only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import structlog

from events import LOG_STREAM, Event, ModelPromoted, process_producer
from handlers import evaluator, selfplay, trainer
from handlers.coordinator import TaskCoordinator
from handlers.play_common import PlaySettings, play_settings
from handlers.runtime import HandlerSpec

if TYPE_CHECKING:
    from ops.app import App
    from projections.runner import ProjectionRunner

log = structlog.get_logger(__name__)

Daemon = Callable[[asyncio.Event], Awaitable[object]]
SLOT_RETRY_S = 20.0  # the longest pause of a trainer or evaluator waiting for a slot
SLOT_NAK_DELAYS = (0.5, 2.0, 5.0, 10.0, SLOT_RETRY_S)
SLOT_MAX_DELIVER = 10
_DAEMONS: dict[asyncio.Task[None], asyncio.Event] = {}


def settings_of(app: App) -> PlaySettings:
    return play_settings(app.settings.loop)


def task_coordinator(app: App, name: str) -> TaskCoordinator:
    """The cluster limits (LoopSettings.tasks) for stage ``name``'s work."""
    return TaskCoordinator(app.store, app.settings.loop, process_producer(name))


def start_daemon(app: App, name: str, body: Daemon) -> asyncio.Event:
    """Run ``body(stop)`` as a task of this process; returns ``stop`` (set it to end it).

    It is also set when the bus starts draining, and App.close awaits the task first.
    """
    stop = asyncio.Event()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        log.warning("daemon_not_started", daemon=name, reason="no running event loop")
        return stop

    async def guarded() -> None:
        watcher = asyncio.create_task(_stop_when_draining(app, stop))
        try:
            await body(stop)
        except Exception as exc:
            if not stop.is_set():
                log.error("daemon_failed", daemon=name, error=repr(exc))
                raise
        finally:
            watcher.cancel()

    task = loop.create_task(guarded(), name=f"daemon:{name}")
    _DAEMONS[task] = stop
    task.add_done_callback(lambda done: _DAEMONS.pop(done, None))
    app.runners[f"daemon:{name}:{id(task)}"] = cast("ProjectionRunner", _Stopper(task, stop))
    return stop


class _Stopper:
    """Stands among App.runners so that App.close stops the daemon before draining."""

    def __init__(self, task: asyncio.Task[None], stop: asyncio.Event) -> None:
        self.task = task
        self.stop_event = stop

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.gather(self.task, return_exceptions=True)


async def stop_daemons() -> None:
    """Stop this process's daemons and wait for them (call before App.close drains the bus)."""
    tasks = list(_DAEMONS)
    for task in tasks:
        _DAEMONS[task].set()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _stop_when_draining(app: App, stop: asyncio.Event) -> None:
    while not (app.nc.is_draining or app.nc.is_closed):
        await asyncio.sleep(0.2)
    stop.set()


# ---------------------------------------------------------------- factories


def _selfplay(app: App, views_db: Path | str | None) -> HandlerSpec:
    settings = settings_of(app)
    nudges = asyncio.Event()

    def on_model_promoted(event: Event) -> None:
        if isinstance(event, ModelPromoted):
            nudges.set()  # the worker re-reads the best model before every batch anyway

    tasks = task_coordinator(app, selfplay.NAME)

    async def daemon(stop: asyncio.Event) -> object:
        return await selfplay.run_worker(
            app.store, settings, app.settings.state_dir, stop, tasks=tasks
        )

    stop = start_daemon(app, selfplay.NAME, daemon)
    return HandlerSpec(
        name=selfplay.NAME,
        subjects=("loop.model.promoted.>",),
        handle=on_model_promoted,
        stream=LOG_STREAM,
        deliver_new_only=True,
        on_stop=stop.set,
        extra={"daemon": daemon},
    )


def _trainer(app: App, views_db: Path | str | None) -> HandlerSpec:
    settings = settings_of(app)
    deps = trainer.TrainerDeps(
        app.store,
        settings,
        app.settings.state_dir,
        process_producer(trainer.NAME),
        tasks=task_coordinator(app, trainer.NAME),
    )
    return HandlerSpec(
        name=trainer.NAME,
        subjects=("loop.training.requested.>",),
        handle=lambda event: trainer.on_training_requested(event, deps),
        stream=LOG_STREAM,
        ack_wait=settings.ack_wait_s,
        max_deliver=SLOT_MAX_DELIVER,
        nak_delays=SLOT_NAK_DELAYS,
        wait_in_place=True,
    )


def _evaluator(app: App, views_db: Path | str | None) -> HandlerSpec:
    settings = settings_of(app)
    deps = evaluator.EvaluatorDeps(
        app.store,
        settings,
        app.settings.state_dir,
        process_producer(evaluator.NAME),
        tasks=task_coordinator(app, evaluator.NAME),
    )
    from handlers import tournament

    async def daemon(stop: asyncio.Event) -> object:
        return await tournament.serve(deps, stop)

    stop = start_daemon(app, "evaluator-work", daemon)

    def on_stop() -> None:
        stop.set()  # no new tournament games
        deps.halt.set()  # a gating match in progress is abandoned (nak'ed, redone elsewhere)

    return HandlerSpec(
        name=evaluator.NAME,
        subjects=("loop.training.completed.>",),
        handle=lambda event: evaluator.on_training_completed(event, deps),
        stream=LOG_STREAM,
        ack_wait=settings.ack_wait_s,
        max_deliver=SLOT_MAX_DELIVER,
        nak_delays=SLOT_NAK_DELAYS,
        wait_in_place=True,
        on_stop=on_stop,
        extra={"daemon": daemon},
    )


PLAY_HANDLERS: dict[str, Callable[[App, Path | str | None], HandlerSpec]] = {
    selfplay.NAME: _selfplay,
    trainer.NAME: _trainer,
    evaluator.NAME: _evaluator,
}
