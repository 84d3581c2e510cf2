"""Wiring of the improvement loop's stages (issue 4): handler factories and projections.

ops.app merges these tables into its own; each factory takes (app, views_db) and returns a
HandlerSpec, like ops.app._elo_rater. The play stages (selfplay, trainer, evaluator) come
from ops.wiring_play when that module is present.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from events import GAMES_STREAM, LOG_STREAM, process_producer
from handlers import coordinator, curriculum, data_gate, feedback, promoter
from handlers.runtime import HandlerSpec
from projections.base import Projection
from projections.curriculum import CurriculumProjection
from projections.feedback import FeedbackProjection
from projections.games import GamesProjection
from projections.pipeline import PipelineProjection
from projections.registry import RegistryProjection

if TYPE_CHECKING:
    from ops.app import App
    from projections.tables import Tables

Factory = Callable[["App", Path | str | None], HandlerSpec]

LOOP_PROJECTIONS: dict[str, Callable[[], Projection]] = {
    "registry": RegistryProjection,
    "curriculum": CurriculumProjection,
    "feedback": FeedbackProjection,
    "pipeline": PipelineProjection,
    "games": GamesProjection,
}


class _Views:
    """A handler's read models, followed in this process and refreshed before each decision."""

    def __init__(self, app: App, views_db: Path | str | None, names: list[str]) -> None:
        app.start_views(names, views_db)
        self.app = app
        self.names = names

    def __getitem__(self, name: str) -> Tables:
        return self.app.runners[name].state  # read at call time: the runner owns the state

    async def refresh(self) -> None:
        for name in self.names:
            await self.app.refresh(name)

    def bind(self, handle: Callable[..., Any], **fixed: Any) -> Callable[[Any], Any]:
        """`handle(event, <view name>=state..., **fixed)` with the views as of the call."""
        return lambda event: handle(event, **{n: self[n] for n in self.names}, **fixed)


def _spec(
    app: App,
    views_db: Path | str | None,
    name: str,
    handle: Callable[..., Any],
    *,
    views: list[str],
    subjects: tuple[str, ...],
    stream: str = LOG_STREAM,
    **options: Any,
) -> HandlerSpec:
    bound = _Views(app, views_db, views)
    fixed: dict[str, Any] = {"producer": process_producer(name)}
    if "settings" in inspect.signature(handle).parameters:
        fixed["settings"] = app.settings.loop
    fixed.update(options.pop("fixed", {}))
    refresh: Callable[[], Awaitable[None]] = bound.refresh
    return HandlerSpec(
        name=name, subjects=subjects, handle=bound.bind(handle, **fixed), stream=stream,
        refresh=refresh, **options,
    )  # fmt: skip


def _data_gate(app: App, views_db: Path | str | None) -> HandlerSpec:
    return _spec(app, views_db, data_gate.NAME, data_gate.on_game_completed,
                 views=["games", "pipeline", "registry", "feedback"],
                 subjects=("games.*.*.selfplay",), stream=GAMES_STREAM, batch=32)  # fmt: skip


def _promoter(app: App, views_db: Path | str | None) -> HandlerSpec:
    return _spec(app, views_db, promoter.NAME, promoter.on_loop_event, views=["registry", "elo"],
                 subjects=("loop.eval.completed.>", "loop.elo.updated.>"), batch=32)  # fmt: skip


def _curriculum(app: App, views_db: Path | str | None) -> HandlerSpec:
    return _spec(app, views_db, curriculum.NAME, curriculum.on_loop_event,
                 views=["curriculum", "registry", "elo", "games", "feedback"],
                 subjects=("loop.model.promoted.>", "loop.model.rejected.>", "loop.elo.updated.>"),
                 batch=32)  # fmt: skip


def _feedback(app: App, views_db: Path | str | None) -> HandlerSpec:
    return _spec(app, views_db, feedback.NAME, feedback.on_loop_event, views=["feedback"],
                 subjects=("loop.training.completed.>", "loop.training.failed.>",
                           "loop.eval.completed.>", "loop.model.rejected.>"), batch=32)  # fmt: skip


def _coordinator(app: App, views_db: Path | str | None) -> HandlerSpec:
    ttl = app.settings.loop.tasks.lease_ttl_s
    spec = _spec(app, views_db, coordinator.NAME, coordinator.on_task_started, views=["pipeline"],
                 subjects=("loop.task.started",), batch=16, max_deliver=100_000,
                 nak_delays=(ttl,), fixed={"leases": coordinator.LeaseClient(app.store)})  # fmt: skip
    return spec


LOOP_HANDLERS: dict[str, Factory] = {
    data_gate.NAME: _data_gate,
    promoter.NAME: _promoter,
    curriculum.NAME: _curriculum,
    feedback.NAME: _feedback,
    coordinator.NAME: _coordinator,
}


def _merge_play_handlers() -> None:
    """Add the play stages' factories; their module may not exist yet."""
    try:
        from ops.wiring_play import PLAY_HANDLERS
    except ImportError as exc:
        if exc.name not in ("ops.wiring_play",):
            raise
        return
    LOOP_HANDLERS.update(PLAY_HANDLERS)


_merge_play_handlers()
