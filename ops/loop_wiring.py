"""Wiring of the improvement loop's stages (issue 4): handler factories and projections.

ops.app merges these tables into its own; each factory takes (app, views_db) and returns a
HandlerSpec, like ops.app._elo_rater.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from projections.base import Projection

if TYPE_CHECKING:
    from handlers.runtime import HandlerSpec
    from ops.app import App

LOOP_PROJECTIONS: dict[str, Callable[[], Projection]] = {}
LOOP_HANDLERS: dict[str, Callable[[App, Path | str | None], HandlerSpec]] = {}
