"""Folds GameCompleted (stream RINGLOOP_GAMES) into the games index per config.

Each game row carries `ordinal`, the running count of the config's selfplay games, so
"games since sequence s" is a difference of two ordinals, not a scan.
"""

from __future__ import annotations

from typing import ClassVar

from events import GAMES_STREAM, GameCompleted
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Row, Table, Tables

GAMES = Table(
    "games_index",
    {
        "config": str,
        "seq": int,
        "game_id": str,
        "purpose": str,
        "moves": int,
        "winner": int,
        "model_id": str,
        "generation": int,
        "ordinal": int,
        "time": str,
    },
    ("config", "seq"),
)
CONFIGS = Table(
    "games_configs",
    {
        "config": str,
        "games": int,
        "selfplay": int,
        "eval": int,
        "import": int,
        "last_seq": int,
        "last_selfplay_seq": int,
        "first_selfplay_seq": int,
    },
    ("config",),
)


class GamesProjection(Projection):
    """The games index: one row per stored game, and counts per config and purpose."""

    name: ClassVar[str] = "games"
    stream: ClassVar[str] = GAMES_STREAM
    subject_filter: ClassVar[str] = "games.>"
    tables: ClassVar[tuple[Table, ...]] = (GAMES, CONFIGS)

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        event = stored.event
        if isinstance(event, GameCompleted):
            _index(state, stored, event)
        return state


def config_counts(state: Tables, config: str) -> Row:
    return state.get(CONFIGS.name, config) or {
        "config": config,
        "games": 0,
        "selfplay": 0,
        "eval": 0,
        "import": 0,
        "last_seq": 0,
        "last_selfplay_seq": 0,
        "first_selfplay_seq": 0,
    }


def selfplay_since(state: Tables, config: str, after_seq: int) -> int:
    """How many selfplay games of `config` are stored after stream sequence `after_seq`."""
    counts = config_counts(state, config)
    if after_seq <= 0:
        return int(counts["selfplay"])
    row = state.get(GAMES.name, config, after_seq)
    if row is None:  # not a game of this config (or pruned): fall back to a scan
        return sum(
            1
            for r in state.rows(GAMES.name)
            if r["config"] == config and r["purpose"] == "selfplay" and r["seq"] > after_seq
        )
    return int(counts["selfplay"] - row["ordinal"])


def selfplay_rows(state: Tables, config: str) -> list[Row]:
    """The config's selfplay game rows in stream order."""
    rows = [
        r for r in state.rows(GAMES.name) if r["config"] == config and r["purpose"] == "selfplay"
    ]
    return sorted(rows, key=lambda r: r["seq"])


def _index(state: Tables, stored: StoredEvent, event: GameCompleted) -> None:
    config = event.config
    if state.get(GAMES.name, config, stored.seq) is not None:
        return
    counts = config_counts(state, config)
    counts = {**counts, "games": counts["games"] + 1, event.purpose: counts[event.purpose] + 1,
              "last_seq": stored.seq}  # fmt: skip
    if event.purpose == "selfplay":
        counts["last_selfplay_seq"] = stored.seq
        counts["first_selfplay_seq"] = counts["first_selfplay_seq"] or stored.seq
    state.put(CONFIGS.name, counts)
    state.put(
        GAMES.name,
        {
            "config": config,
            "seq": stored.seq,
            "game_id": event.game_id,
            "purpose": event.purpose,
            "moves": len(event.moves),
            "winner": event.winner,
            "model_id": event.model_id,
            "generation": event.generation,
            "ordinal": counts["selfplay"],
            "time": stored.time.isoformat(),
        },
    )
