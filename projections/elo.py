"""Folds MatchCompleted and EloUpdated into the Elo table, its history and the match log."""

from __future__ import annotations

from typing import ClassVar

from events import EloUpdated, MatchCompleted
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Table, Tables

RATINGS = Table(
    "elo_ratings",
    {
        "config": str,
        "participant": str,
        "display_name": str,
        "elo": float,
        "games": int,
        "wins": int,
        "losses": int,
        "draws": int,
        "last_seq": int,
    },
    ("config", "participant"),
)
HISTORY = Table(
    "elo_history",
    {
        "config": str,
        "participant": str,
        "seq": int,
        "match_id": str,
        "before": float,
        "after": float,
        "rank": int,
        "time": str,
    },
    ("config", "participant", "seq"),
)
MATCHES = Table(
    "elo_matches",
    {
        "config": str,
        "match_id": str,
        "seq": int,
        "time": str,
        "participants": list,
        "context": str,
        "context_id": str,
        "game_id": str,
        "rated_seq": int,
    },
    ("config", "match_id"),
)
NAMES = Table(
    "elo_participants",
    {"config": str, "participant": str, "display_name": str, "model_sha256": str, "aliases": list},
    ("config", "participant"),
)
CONFIG_STATE = Table(
    "elo_config_state",
    {"config": str, "last_elo_seq": int, "matches_rated": int},
    ("config",),
)


class EloProjection(Projection):
    """The Elo read model. Ratings change only through EloUpdated events."""

    name: ClassVar[str] = "elo"
    subject_filter: ClassVar[str] = "loop.>"
    tables: ClassVar[tuple[Table, ...]] = (RATINGS, HISTORY, MATCHES, NAMES, CONFIG_STATE)

    def accepts(self, subject: str) -> bool:
        return subject.startswith(("loop.elo.", "loop.match."))

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        match stored.event:
            case MatchCompleted() as event:
                _record_match(state, event, stored)
            case EloUpdated() as event:
                _record_update(state, event, stored)
        return state


def _record_match(state: Tables, event: MatchCompleted, stored: StoredEvent) -> None:
    if state.get("elo_matches", event.config, event.match_id) is not None:
        return
    for participant in event.participants:
        _remember_name(
            state,
            event.config,
            participant.key,
            participant.participant_id,
            participant.model_sha256,
        )
    state.put(
        "elo_matches",
        {
            "config": event.config,
            "match_id": event.match_id,
            "seq": stored.seq,
            "time": stored.time.isoformat(),
            "participants": [
                {"participant": p.key, "rank": p.rank, "seat": p.seat} for p in event.participants
            ],
            "context": event.context,
            "context_id": event.context_id,
            "game_id": event.game_id,
            "rated_seq": None,
        },
    )


def _remember_name(state: Tables, config: str, key: str, name: str, sha256: str | None) -> None:
    row = state.get("elo_participants", config, key)
    if row is None:
        state.put(
            "elo_participants",
            {
                "config": config,
                "participant": key,
                "display_name": name,
                "model_sha256": sha256,
                "aliases": [name],
            },
        )
    elif name not in row["aliases"]:
        state.put("elo_participants", {**row, "aliases": [*row["aliases"], name]})


def _record_update(state: Tables, event: EloUpdated, stored: StoredEvent) -> None:
    config = event.config
    match_row = state.get("elo_matches", config, event.match_id)
    if match_row is not None:
        state.put("elo_matches", {**match_row, "rated_seq": stored.seq})
    top_count = sum(1 for change in event.changes if change.rank == 1)
    time = stored.time.isoformat()
    for change in event.changes:
        _apply_change(
            state,
            config,
            change.participant_id,
            change.after,
            _result(change.rank, top_count),
            stored.seq,
        )
        state.put(
            "elo_history",
            {
                "config": config,
                "participant": change.participant_id,
                "seq": stored.seq,
                "match_id": event.match_id,
                "before": change.before,
                "after": change.after,
                "rank": change.rank,
                "time": time,
            },
        )
    previous = state.get("elo_config_state", config)
    rated = previous["matches_rated"] + 1 if previous else 1
    state.put(
        "elo_config_state", {"config": config, "last_elo_seq": stored.seq, "matches_rated": rated}
    )


def _result(rank: int, top_count: int) -> str:
    if rank != 1:
        return "losses"
    return "wins" if top_count == 1 else "draws"


def _apply_change(state: Tables, config: str, key: str, elo: float, result: str, seq: int) -> None:
    row = state.get("elo_ratings", config, key)
    if row is None:
        names = state.get("elo_participants", config, key)
        row = {
            "config": config,
            "participant": key,
            "display_name": names["display_name"] if names else key,
            "elo": elo,
            "games": 0,
            "wins": 0,
            "losses": 0,
            "draws": 0,
            "last_seq": seq,
        }
    else:
        row = dict(row)  # rows handed out earlier (snapshots, readers) stay unchanged
    row["elo"] = elo
    row["games"] += 1
    row[result] += 1
    row["last_seq"] = seq
    state.put("elo_ratings", row)
