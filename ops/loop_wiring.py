"""Wiring of the improvement loop's stages (issue 4): handler factories and projections.

ops.app merges these tables into its own; each factory takes (app, views_db) and returns a
HandlerSpec, like ops.app._elo_rater. The play stages (selfplay, trainer, evaluator) come
from ops.wiring_play when that module is present.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from projections.base import Projection
from projections.curriculum import CurriculumProjection
from projections.feedback import FeedbackProjection
from projections.games import GamesProjection
from projections.pipeline import PipelineProjection
from projections.registry import RegistryProjection

if TYPE_CHECKING:
    from handlers.runtime import HandlerSpec
    from ops.app import App

Factory = Callable[["App", Path | str | None], "HandlerSpec"]

LOOP_PROJECTIONS: dict[str, Callable[[], Projection]] = {
    "registry": RegistryProjection,
    "curriculum": CurriculumProjection,
    "feedback": FeedbackProjection,
    "pipeline": PipelineProjection,
    "games": GamesProjection,
}
LOOP_HANDLERS: dict[str, Factory] = {}


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
