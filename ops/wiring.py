"""The composition root of the stages: every consumer is built from handlers.REACTIONS.

For each (event class, handler) of the table: the consumer's subjects and stream come from
the event class (events.subjects), its durable name is ``<stage>-<event type>``, its options
from the stage module's ``consumer(settings)``, and the handler's keyword parameters are
bound by name — a read model's name (``registry``, ``gating``, ...) gives that view as of the
call (refreshed to the end of its stream first), ``settings`` the LoopSettings, ``producer``
this process, and the rest the stage's per-process dependencies below.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from events import Event, process_producer
from events.subjects import stream_of, subject_filters
from handlers.runtime import Consumer, HandlerRuntime, HandlerSpec, is_batched, run_until_stopped
from projections.base import Projection
from projections.curriculum import CurriculumProjection
from projections.elo import EloProjection
from projections.feedback import FeedbackProjection
from projections.games import GamesProjection
from projections.gating import GatingProjection
from projections.pipeline import PipelineProjection
from projections.registry import RegistryProjection
from projections.timeline import TimelineProjection

if TYPE_CHECKING:
    from ops.app import App
    from projections.tables import Tables

log = structlog.get_logger(__name__)

PROJECTIONS: dict[str, Callable[[], Projection]] = {
    "elo": EloProjection,
    "registry": RegistryProjection,
    "curriculum": CurriculumProjection,
    "feedback": FeedbackProjection,
    "pipeline": PipelineProjection,
    "games": GamesProjection,
    "gating": GatingProjection,
    "timeline": TimelineProjection,
}


@dataclass(frozen=True)
class Reaction:
    """One entry of the table: a handler function and the event class it consumes."""

    stage: str
    event: type[Event]
    handle: Callable[..., Any]

    @property
    def durable(self) -> str:
        kind = str(self.event.model_fields["type"].default)
        return f"{self.stage}-{kind.replace('.', '-').replace('_', '-')}"


def stage_of(handle: Callable[..., Any]) -> str:
    return str(sys.modules[handle.__module__].NAME)


@cache
def reactions() -> tuple[Reaction, ...]:
    from handlers import REACTIONS

    return tuple(
        Reaction(stage_of(handle), event, handle)
        for event, handles in REACTIONS.items()
        for handle in handles
    )


def stages() -> list[str]:
    """Every stage name: those with reactions and those with a daemon."""
    from handlers import DAEMONS

    return sorted({r.stage for r in reactions()} | set(DAEMONS))


@dataclass
class StageWiring:
    """One stage in this process: its consumers, daemon and per-process dependencies."""

    app: App
    stage: str
    views_db: Path | str | None = None
    halt: threading.Event = field(default_factory=threading.Event)
    _deps: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in stages():
            raise ValueError(f"unknown handler {self.stage!r}; known: {', '.join(stages())}")
        module = sys.modules[self._module_name()]
        self.consumer: Consumer = (
            module.consumer(self.app.settings.loop) if hasattr(module, "consumer") else Consumer()
        )

    def _module_name(self) -> str:
        from handlers import DAEMONS

        for reaction in reactions():
            if reaction.stage == self.stage:
                return reaction.handle.__module__
        return str(DAEMONS[self.stage].__module__)

    # ------------------------------------------------------------ consumers

    def specs(self) -> list[HandlerSpec]:
        return [self.spec(r) for r in reactions() if r.stage == self.stage]

    def spec(self, reaction: Reaction) -> HandlerSpec:
        signature = inspect.signature(reaction.handle).parameters.values()
        parameters = [  # the event comes first; a parameter with a default keeps it
            p.name for p in list(signature)[1:] if p.default is inspect.Parameter.empty
        ]
        views = [name for name in parameters if name in PROJECTIONS]
        self.app.start_views(views, self.views_db)
        resolve = self._resolver(parameters, views)
        handle: Callable[[Event], Any]
        handle_batch = None
        if is_batched(reaction.handle):
            handle_batch = _batch_call(reaction.handle, resolve)
            handle = _single_of_batch(handle_batch)
        else:
            handle = _call(reaction.handle, resolve)
        subjects = subject_filters(reaction.event)
        options = self.consumer
        return HandlerSpec(
            name=reaction.durable,
            subjects=subjects,
            handle=handle,
            handle_batch=handle_batch,
            stream=stream_of(reaction.event),
            ack_wait=options.ack_wait,
            max_deliver=options.max_deliver,
            batch=options.batch,
            nak_delays=options.nak_delays,
            wait_in_place=options.wait_in_place,
            per_process=options.per_process,
            refresh=self._refresher(views),
            on_stop=self.halt.set,
            stage=self.stage,
        )

    def _resolver(self, parameters: list[str], views: list[str]) -> Callable[[], dict[str, Any]]:
        fixed = {name: self.dependency(name) for name in parameters if name not in views}
        runners = self.app.runners

        def resolve() -> dict[str, Any]:
            # views are read at call time: the runner owns (and replaces) its state
            return {**fixed, **{name: runners[name].state for name in views}}

        return resolve

    def _refresher(self, views: list[str]) -> Callable[[], Awaitable[None]] | None:
        if not views:
            return None

        async def refresh() -> None:
            for name in views:
                await self.app.refresh(name)

        return refresh

    # ------------------------------------------------------------ dependencies

    def dependency(self, name: str) -> Any:
        """A handler parameter other than a view, built once per stage and process."""
        if name not in self._deps:
            self._deps[name] = self._build(name)
        return self._deps[name]

    def _build(self, name: str) -> Any:
        app, loop = self.app, self.app.settings.loop
        if name == "settings":
            return loop
        if name == "producer":
            return process_producer(self.stage)
        if name == "leases":
            from handlers.coordinator import LeaseClient

            return LeaseClient(app.store)
        if name == "tasks":
            from handlers.coordinator import TaskCoordinator

            return TaskCoordinator(app.store, loop, process_producer(self.stage))
        if name == "workspace":
            from handlers.trainer import Workspace

            return Workspace(app.store, app.settings.state_dir, tasks=self.dependency("tasks"))
        if name == "seats":
            from handlers.evaluator import Seats

            return Seats(app.store, app.settings.state_dir, loop, halt=self.halt)
        if name == "worker":
            from handlers.selfplay import new_worker

            names = ["registry", "curriculum", "feedback"]
            app.start_views(names, self.views_db)
            views = LiveViews(app, names)
            return new_worker(app.store, loop, views, app.settings.state_dir)
        raise ValueError(f"stage {self.stage!r}: no dependency named {name!r}")

    # ------------------------------------------------------------ the daemon

    def daemon(self) -> Callable[[Any], Awaitable[object]] | None:
        """The stage's long-running body (``body(stop)``), if it has one."""
        from handlers import DAEMONS

        run = DAEMONS.get(self.stage)
        if run is None:
            return None
        worker, tasks = self.dependency("worker"), self.dependency("tasks")

        async def body(stop: Any) -> object:
            return await run(worker, stop, tasks=tasks)

        return body


class LiveViews(Mapping[str, "Tables"]):
    """Views by name, read at each access (the runners replace their states as they fold)."""

    def __init__(self, app: App, names: list[str]) -> None:
        self.app, self.names = app, names

    def __getitem__(self, name: str) -> Tables:
        return self.app.runners[name].state

    def __iter__(self) -> Any:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _call(handle: Callable[..., Any], resolve: Callable[[], dict[str, Any]]) -> Callable[..., Any]:
    return lambda event: handle(event, **resolve())


def _batch_call(
    handle: Callable[..., Any], resolve: Callable[[], dict[str, Any]]
) -> Callable[[list[Event]], Awaitable[list[Any]]]:
    async def call(events: list[Event]) -> list[Any]:
        return list(await handle(events, **resolve()))

    return call


def _single_of_batch(
    batch: Callable[[list[Event]], Awaitable[list[Any]]],
) -> Callable[[Event], Awaitable[Any]]:
    async def call(event: Event) -> Any:
        (outcome,) = await batch([event])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return call


async def run_stages(
    app: App, names: list[str], stop: asyncio.Event, *, views_db: Path | str | None = None
) -> None:
    """Run every consumer and daemon of the named stages until ``stop`` (then drain: each
    consumer finishes the message in hand, each daemon its batch). A daemon that fails
    stops the rest and its error is raised."""
    wirings = [app.stage(name, views_db=views_db) for name in names]
    runtimes = [HandlerRuntime(spec, app.store) for wiring in wirings for spec in wiring.specs()]
    bodies = [(wiring.stage, body) for wiring in wirings if (body := wiring.daemon()) is not None]
    daemons = [
        asyncio.create_task(_guarded(stage, body, stop), name=f"daemon:{stage}")
        for stage, body in bodies
    ]
    try:
        await run_until_stopped(runtimes, stop)
    finally:
        stop.set()
        results = await asyncio.gather(*daemons, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def _guarded(
    stage: str, body: Callable[[Any], Awaitable[object]], stop: asyncio.Event
) -> None:
    try:
        await body(stop)
    except Exception as exc:
        if not stop.is_set():
            log.error("daemon_failed", daemon=stage, error=repr(exc))
            stop.set()
            raise
