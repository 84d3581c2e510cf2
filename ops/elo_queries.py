"""Queries over the Elo read model: leaderboards, head-to-head, match and rating history.

The queries behind ``ops.elo_service``'s reads (RingRift's argument names and returned dict
keys), over the Elo projection's SQLite tables (``elo_ratings``, ``elo_history``,
``elo_matches``, ``elo_participants``); ``current_elo_runner`` brings them up to date.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.rating import DEFAULT_RATING, PINNED_RATINGS, ml_ratings
from events.config import split_config
from events.keys import is_model_key
from ops.app import App, projector_owner
from projections.elo import EloProjection
from projections.runner import ProjectionRunner, open_db

# ---------------------------------------------------------------- the read model


def memory_copy(path: Path | str) -> sqlite_utils.Database:
    """An in-memory copy of a projections database (empty when the file does not exist)."""
    db = open_db(":memory:")
    if Path(path).exists():
        source = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            source.backup(db.conn)
        finally:
            source.close()
    return db


async def up_owns_projector(app: App) -> bool:
    """Whether a `ringloop up` serves this state folder, and so owns its projections.db.

    The rule: another process holds the state folder's projector lock (ops.app.ProjectorLock),
    which `ringloop up` takes whether it runs the embedded server or uses --nats.
    """
    return projector_owner(app.settings) is not None


async def current_elo_runner(app: App) -> ProjectionRunner:
    """The Elo read model as of now: catches up the state folder's file when nobody owns it,
    else folds the tail into an in-memory copy (never writing the owner's file)."""
    if await up_owns_projector(app):
        runner = ProjectionRunner(
            EloProjection(), app.store, memory_copy(app.settings.projections_db)
        )
        await runner.catch_up()
        return runner
    runner = app.projection_runner("elo")
    if runner.following:  # already following in this process: wait, never fold twice
        await app.refresh("elo")
    else:
        await runner.catch_up()
    return runner


def _names(db: sqlite_utils.Database, config: str | None) -> list[dict[str, Any]]:
    where, params = ("where config = ?", [config]) if config else ("", [])
    return list(db.query(f"select * from elo_participants {where}", params))


def display_names(db: sqlite_utils.Database, config: str | None = None) -> dict[str, str]:
    return {row["participant"]: row["display_name"] for row in _names(db, config)}


def resolve_keys(db: sqlite_utils.Database, name: str, config: str | None = None) -> set[str]:
    """The rating keys a participant name stands for (its own, or a model hash it aliases)."""
    keys = {name}
    for row in _names(db, config):
        if name == row["participant"] or name in _json_list(row["aliases"]):
            keys.add(row["participant"])
    return keys


def _json_list(value: Any) -> list[Any]:
    return json.loads(value) if isinstance(value, str) else list(value or [])


def rated_matches(db: sqlite_utils.Database, config: str) -> list[dict[str, int]]:
    """Every rated match of a config as participant key -> rank (1 = best), in log order."""
    rows = db.query(
        "select participants from elo_matches where config = ? and rated_seq is not null "
        "order by seq",
        [config],
    )
    return [{p["participant"]: p["rank"] for p in _json_list(r["participants"])} for r in rows]


def combined_leaderboard(
    db: sqlite_utils.Database, config: str, limit: int | None = None
) -> list[dict[str, Any]]:
    """Elo and full-history ML ratings (95% interval, anchored on the pinned baselines)."""
    ml = ml_ratings(rated_matches(db, config))
    rows = []
    for row in db.query(
        "select * from elo_ratings where config = ? order by elo desc, participant", [config]
    ):
        fit = ml.get(row["participant"])
        rows.append(
            {
                "participant": row["display_name"],
                "key": row["participant"],
                "elo": round(row["elo"], 1),
                "ml_rating": round(fit.rating, 1) if fit else None,
                "ml_low": round(fit.low, 1) if fit else None,
                "ml_high": round(fit.high, 1) if fit else None,
                "games": row["games"],
                "wins": row["wins"],
                "losses": row["losses"],
                "draws": row["draws"],
            }
        )
    return rows[:limit] if limit is not None else rows


# ---------------------------------------------------------------- RingRift-shaped reads


def _ai_type(key: str) -> str:
    return "baseline" if key in PINNED_RATINGS else "model" if is_model_key(key) else "ai"


def _win_rate(wins: int, draws: int, games: int) -> float:
    return (wins + 0.5 * draws) / games if games else 0.5


def leaderboard_entries(
    db: sqlite_utils.Database, config: str, limit: int = 50, min_games: int = 0
) -> list[dict[str, Any]]:
    """RingRift's LeaderboardEntry fields (rank, participant_id, name, rating, ...)."""
    board, players = split_config(config)
    rows = db.query(
        "select r.*, h.time as last_time from elo_ratings r left join elo_history h "
        "on h.config = r.config and h.participant = r.participant and h.seq = r.last_seq "
        "where r.config = ? and r.games >= ? order by r.elo desc, r.participant limit ?",
        [config, min_games, limit],
    )
    return [
        {
            "rank": rank,
            "participant_id": row["display_name"],
            "name": row["display_name"],
            "key": row["participant"],
            "ai_type": _ai_type(row["participant"]),
            "rating": row["elo"],
            "games_played": row["games"],
            "wins": row["wins"],
            "losses": row["losses"],
            "draws": row["draws"],
            "win_rate": _win_rate(row["wins"], row["draws"], row["games"]),
            "last_active": row["last_time"],
            "board_type": board,
            "num_players": players,
            "config": config,
        }
        for rank, row in enumerate(rows, 1)
    ]


def rating_entry(db: sqlite_utils.Database, config: str, participant_id: str) -> dict[str, Any]:
    """One participant's rating (the start or pinned rating with 0 games when unrated)."""
    keys = resolve_keys(db, participant_id, config)
    marks = ",".join("?" * len(keys))
    rows = list(
        db.query(
            f"select * from elo_ratings where config = ? and participant in ({marks})",
            [config, *sorted(keys)],
        )
    )
    if not rows:
        start = PINNED_RATINGS.get(participant_id, DEFAULT_RATING)
        rows = [{"elo": start, "games": 0, "wins": 0, "losses": 0, "draws": 0}]
    row = max(rows, key=lambda r: r["games"])
    return {
        "participant_id": participant_id,
        "rating": row["elo"],
        "games_played": row["games"],
        "wins": row["wins"],
        "losses": row["losses"],
        "draws": row["draws"],
        "win_rate": _win_rate(row["wins"], row["draws"], row["games"]),
        "config": config,
    }


def _matches(
    db: sqlite_utils.Database, config: str | None, tournament_id: str | None = None
) -> list[dict[str, Any]]:
    clauses, params = [], []
    if config is not None:
        clauses.append("config = ?")
        params.append(config)
    if tournament_id is not None:
        clauses.append("context_id = ?")
        params.append(tournament_id)
    where = f"where {' and '.join(clauses)}" if clauses else ""
    rows = list(db.query(f"select * from elo_matches {where} order by seq desc", params))
    for row in rows:
        row["participants"] = _json_list(row["participants"])
    return rows


def _rank_of(row: Mapping[str, Any], keys: set[str]) -> int | None:
    return next((p["rank"] for p in row["participants"] if p["participant"] in keys), None)


def head_to_head(
    db: sqlite_utils.Database, participant_a: str, participant_b: str, config: str | None
) -> dict[str, Any]:
    """Games both played (any config unless given): who finished ahead of whom."""
    keys_a = resolve_keys(db, participant_a, config)
    keys_b = resolve_keys(db, participant_b, config)
    a_wins = b_wins = draws = 0
    for row in _matches(db, config):
        rank_a, rank_b = _rank_of(row, keys_a), _rank_of(row, keys_b)
        if rank_a is None or rank_b is None:
            continue
        a_wins += rank_a < rank_b
        b_wins += rank_b < rank_a
        draws += rank_a == rank_b
    total = a_wins + b_wins + draws
    return {
        "participant_a": participant_a,
        "participant_b": participant_b,
        "total_games": total,
        "a_wins": a_wins,
        "b_wins": b_wins,
        "draws": draws,
        "a_win_rate": a_wins / total if total else 0.0,
        "b_win_rate": b_wins / total if total else 0.0,
    }


def match_history(
    db: sqlite_utils.Database,
    participant_id: str | None,
    tournament_id: str | None,
    config: str | None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first, in RingRift's match_history shape (rankings 0 = first)."""
    rows = _matches(db, config, tournament_id)
    if participant_id is not None:
        keys = resolve_keys(db, participant_id, config)
        rows = [row for row in rows if _rank_of(row, keys) is not None]
    return [_match_record(db, row) for row in rows[:limit]]


def _match_record(db: sqlite_utils.Database, row: Mapping[str, Any]) -> dict[str, Any]:
    names = display_names(db, row["config"])
    parts = row["participants"]
    firsts = [p["participant"] for p in parts if p["rank"] == 1]
    board, players = split_config(row["config"])
    before, after = {}, {}
    if row["rated_seq"] is not None:
        for change in db.query(
            "select participant, before, after from elo_history where config = ? and seq = ?",
            [row["config"], row["rated_seq"]],
        ):
            name = names.get(change["participant"], change["participant"])
            before[name], after[name] = change["before"], change["after"]
    return {
        "match_id": row["match_id"],
        "participant_ids": [names.get(p["participant"], p["participant"]) for p in parts],
        "rankings": [p["rank"] - 1 for p in parts],
        "winner_id": names.get(firsts[0], firsts[0]) if len(firsts) == 1 else None,
        "board_type": board,
        "num_players": players,
        "config": row["config"],
        "tournament_id": row["context_id"],
        "context": row["context"],
        "game_id": row["game_id"],
        "timestamp": row["time"],
        "elo_before": before,
        "elo_after": after,
    }


def rating_history(
    db: sqlite_utils.Database, participant_id: str, config: str, limit: int = 100
) -> list[dict[str, Any]]:
    """A participant's rating after each of its rated matches, newest first."""
    keys = sorted(resolve_keys(db, participant_id, config))
    marks = ",".join("?" * len(keys))
    board, players = split_config(config)
    rows = db.query(
        f"select * from elo_history where config = ? and participant in ({marks}) "
        "order by seq desc limit ?",
        [config, *keys, limit],
    )
    return [
        {
            "participant_id": participant_id,
            "board_type": board,
            "num_players": players,
            "config": config,
            "rating": row["after"],
            "rating_before": row["before"],
            "rating_change": row["after"] - row["before"],
            "rank": row["rank"],
            "match_id": row["match_id"],
            "timestamp": row["time"],
            "seq": row["seq"],
        }
        for row in rows
    ]
