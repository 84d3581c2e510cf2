"""RingRift's EloService API on the event log: writes append events, reads query the Elo read model.

Compatibility layer for code written against RingRift's ``app.training.elo_service``:
``get_elo_service()`` returns an object with ``init_elo_database``, ``register_models``,
``update_elo_after_match``, ``record_match_and_update``, ``get_leaderboard``,
``get_head_to_head``, ``get_match_history`` and ``get_rating_history`` (RingRift's
argument names and returned dict keys; ``board_type`` + ``num_players`` or ``config=``).

* Writes become events: a registration is ``ModelRegistered``, a result ``MatchCompleted``.
  Ratings change only through the ``EloUpdated`` the elo-rater emits; an update waits for
  it and returns the new ratings. Nothing here writes a rating table.
* Reads query the Elo projection's SQLite tables (``elo_ratings``, ``elo_history``,
  ``elo_matches``, ``elo_participants``), brought up to the end of the log first.
* The read model lives in memory, seeded from a copy of the state folder's
  ``projections.db`` and then following the log, so the service never writes that file
  (its owner is ``ringloop up`` or the commands that catch it up).
* The rater: the service runs an elo-rater in its own event loop on the first update, so
  updates work with no rater process. A second rater beside ``ringloop up``'s is safe: they
  share the durable ``elo-rater`` consumer and the rater's optimistic concurrency keeps
  the updates of a config serial. ``rater=False`` leaves rating to the running processes.
* RingRift's API is synchronous: ``EloService`` runs ``AsyncEloService`` (the core, for
  async callers) on a private event loop in a background thread.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import sqlite_utils
from pydantic import ValidationError

from engine.rating import DEFAULT_RATING, K_FACTOR, PINNED_RATINGS, ml_ratings
from events import (
    LOG_STREAM,
    MatchCompleted,
    MatchParticipant,
    ModelRegistered,
    Producer,
    derive_event_id,
)
from events.envelope import CONFIG_PATTERN, new_event_id
from handlers.runtime import HandlerRuntime
from ops.app import App, projector_owner
from ops.settings import Settings, load_settings
from projections.base import Projection
from projections.elo import EloProjection
from projections.eventstore import StoredEvent
from projections.runner import ProjectionRunner, open_db
from projections.tables import Table, Tables

T = TypeVar("T")

BOARD_TYPES = ("square8", "hex8", "square19", "hexagonal")
_BOARD_ALIASES = {"sq8": "square8", "sq19": "square19"}
_ID_CONFIG = re.compile(
    r"(?:^|[_:/.-])(square8|square19|hexagonal|hex8|sq8|sq19)_([234])p(?=$|[_:/.-])"
)
_ID_PLAYERS = re.compile(r"_([234])p(?=$|[_:/.-])")


class MatchRefused(ValueError):
    """A result the compat layer will not record (cross-config, bad ranks): says why."""


# ---------------------------------------------------------------- configs


def config_name(
    board_type: object = None, num_players: int | None = None, config: str | None = None
) -> str:
    """``square8_2p`` from RingRift's board_type + num_players (or a config given as is)."""
    if config is None:
        if board_type is None or num_players is None:
            raise ValueError("give config= or both board_type and num_players")
        board = str(getattr(board_type, "value", board_type)).lower()
        config = f"{_BOARD_ALIASES.get(board, board)}_{int(num_players)}p"
    if not re.fullmatch(CONFIG_PATTERN, config):
        raise ValueError(
            f"unknown config {config!r}: boards are {', '.join(BOARD_TYPES)}, players 2-4"
        )
    return config


def id_config_conflict(participant_id: str, config: str) -> str | None:
    """Why an id that names a config (``ringrift_best_square8_4p``) cannot play in `config`."""
    board, players = config.rsplit("_", 1)
    named = _ID_CONFIG.search(participant_id)
    if named is not None:
        named_config = f"{_BOARD_ALIASES.get(named[1], named[1])}_{named[2]}p"
        if named_config != config:
            return f"{participant_id!r} is a {named_config} participant, not {config}"
        return None
    count = _ID_PLAYERS.search(participant_id.split(":")[0])
    if count is not None and f"{count[1]}p" != players:
        return f"{participant_id!r} is a {count[1]}-player participant, not {config}"
    return None


def ranks_from_positions(positions: Sequence[int]) -> list[int]:
    """RingRift's final positions (0 = first; ties share one) as ranks 1..n ("1224")."""
    return [1 + sum(other < own for other in positions) for own in positions]


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


# ---------------------------------------------------------------- registered models


MODELS = Table(
    "elo_compat_models",
    {"model_id": str, "config": str, "model_sha256": str, "parent_model_id": str, "seq": int},
    ("model_id", "config"),
)


class RegisteredModels(Projection):
    """Which config (and weights hash) each registered model belongs to."""

    name: ClassVar[str] = "elo-compat-models"
    subject_filter: ClassVar[str] = "loop.model.registered.>"
    tables: ClassVar[tuple[Table, ...]] = (MODELS,)

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        match stored.event:
            case ModelRegistered() as event:
                sha = event.artifact.sha256 if event.artifact else None
                state.put(
                    "elo_compat_models",
                    {
                        "model_id": event.model_id,
                        "config": event.config,
                        "model_sha256": sha or event.metadata.get("model_sha256"),
                        "parent_model_id": event.parent_model_id,
                        "seq": stored.seq,
                    },
                )
        return state


def _file_sha256(path: str | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- RingRift-shaped reads


def _split(config: str) -> tuple[str, int]:
    board, players = config.rsplit("_", 1)
    return board, int(players[:-1])


def _ai_type(key: str) -> str:
    return "baseline" if key in PINNED_RATINGS else "model" if key.startswith("sha256:") else "ai"


def _win_rate(wins: int, draws: int, games: int) -> float:
    return (wins + 0.5 * draws) / games if games else 0.5


def leaderboard_entries(
    db: sqlite_utils.Database, config: str, limit: int = 50, min_games: int = 0
) -> list[dict[str, Any]]:
    """RingRift's LeaderboardEntry fields (rank, participant_id, name, rating, ...)."""
    board, players = _split(config)
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
    board, players = _split(row["config"])
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
    board, players = _split(config)
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


class AsyncEloService:
    """The compat layer's core on one App: appends events, reads the Elo read model."""

    producer_name = "elo-service"

    def __init__(self, app: App, *, rater: bool = True, owns_app: bool = False) -> None:
        self.app = app
        self.timeout = 30.0
        self._want_rater = rater
        self._owns_app = owns_app
        self._rater: HandlerRuntime | None = None
        self._rater_task: asyncio.Task[None] | None = None
        self._closing = False
        self.producer = Producer.current(self.producer_name)
        if "elo" not in app.runners:
            db = memory_copy(app.settings.projections_db)
            app.runners["elo"] = ProjectionRunner(EloProjection(), app.store, db)
        self.elo = app.runners["elo"]
        self.models = ProjectionRunner(RegisteredModels(), app.store, open_db(":memory:"))
        for runner in (self.elo, self.models):
            if not runner.following:
                runner.start()

    @classmethod
    async def open(cls, settings: Settings | None = None, *, rater: bool = True) -> AsyncEloService:
        """Connect (see App.open) and follow the log; `settings` defaults to ./.ringloop."""
        app = await App.open(settings or default_settings())
        return cls(app, rater=rater, owns_app=True)

    async def close(self) -> None:
        self._closing = True
        if self._rater is not None:
            self._rater.stop()
        if self._rater_task is not None:
            await self._rater_task
        await self.models.stop()
        if self._owns_app:
            await self.app.close()

    async def refresh(self) -> None:
        """Bring both read models to the current end of the log."""
        await self.app.refresh("elo", self.timeout)
        last = await self.app.store.last_seq(LOG_STREAM, RegisteredModels.subject_filter)
        await self.models.wait_for(last, self.timeout)

    @property
    def db(self) -> sqlite_utils.Database:
        return self.elo.db

    # ------------------------------------------------------------ writes

    async def init_elo_database(self) -> AsyncEloService:
        """RingRift created its tables here; streams and read models already exist."""
        await self.refresh()
        return self

    async def register_model(
        self,
        model_id: str,
        board_type: object = None,
        num_players: int | None = None,
        model_path: str | None = None,
        parent_model_id: str | None = None,
        *,
        config: str | None = None,
    ) -> None:
        """Append ModelRegistered (once per model and config; the weights' hash if readable)."""
        config = config_name(board_type, num_players, config)
        sha = await asyncio.to_thread(_file_sha256, model_path)
        await self.refresh()
        known = self.models.state.get("elo_compat_models", model_id, config)
        if known is not None and known["model_sha256"] == sha:
            return
        metadata = {"source": self.producer_name, "model_path": model_path, "model_sha256": sha}
        event = ModelRegistered(
            event_id=derive_event_id("elo-service:register", f"{config}:{model_id}:{sha}"),
            producer=self.producer,
            config=config,
            model_id=model_id,
            parent_model_id=parent_model_id,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )
        seq = await self.app.store.append(event)
        await self.models.wait_for(seq, self.timeout)

    async def register_models(self, models: Sequence[Mapping[str, Any]]) -> int:
        """RingRift's batch form: dicts with model_id (or id), model_path, board_type, num_players."""
        count = 0
        for model in models:
            model_id = model.get("model_id") or model.get("id")
            if not model_id:
                continue
            await self.register_model(
                str(model_id),
                model.get("board_type", "square8"),
                int(model.get("num_players", 2)),
                model_path=model.get("model_path") or None,
                parent_model_id=model.get("parent_model_id"),
                config=model.get("config"),
            )
            count += 1
        return count

    async def record_match_and_update(
        self,
        participant_ids: Sequence[str],
        rankings: Sequence[int],
        board_type: object = None,
        num_players: int | None = None,
        tournament_id: str | None = None,
        game_length: int = 0,
        duration_sec: float = 0.0,
        worker: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        k_factor: float = K_FACTOR,
        game_id: str | None = None,
        *,
        config: str | None = None,
        context: str = "tournament",
    ) -> tuple[str, dict[str, float]]:
        """Append one result (rankings: 0 = first), wait for its rating; (match_id, new ratings).

        RingRift's argument order; game_length, duration_sec, worker and metadata are
        accepted and not recorded. K is the elo-rater's (32): another k_factor is refused.
        """
        del game_length, duration_sec, worker, metadata
        if k_factor != K_FACTOR:
            raise MatchRefused(f"k_factor {k_factor!r}: the elo-rater rates with K={K_FACTOR:g}")
        config = config_name(board_type, num_players, config)
        match_id = game_id or new_event_id()
        event = await self._match_event(
            config, list(participant_ids), list(rankings), match_id, game_id, tournament_id, context
        )
        self._ensure_rater()
        await self.app.store.append(event)
        changes = await self._rating_of(config, match_id)
        by_key = {p.key: p.participant_id for p in event.participants}
        return match_id, {by_key[key]: after for key, (_, after) in changes.items()}

    async def update_elo_after_match(
        self,
        model_a_id: str,
        model_b_id: str,
        winner: str | None,
        board_type: object = "square8",
        num_players: int = 2,
        game_length: int = 0,
        duration_sec: float = 0.0,
        *,
        config: str | None = None,
        tournament_id: str | None = None,
        game_id: str | None = None,
    ) -> dict[str, Any]:
        """A two-player result; winner: either id, "model_a"/"model_b", "draw" or None.

        Returns RingRift's shape: {"model_a": new rating, "model_b": new rating,
        "changes": {id: delta}, "match_id": ...} (plus "config").
        game_length and duration_sec are accepted for compatibility and not recorded.
        """
        del game_length, duration_sec
        positions = _positions_from_winner(model_a_id, model_b_id, winner)
        config = config_name(board_type, num_players, config)
        match_id = game_id or new_event_id()
        event = await self._match_event(
            config, [model_a_id, model_b_id], positions, match_id, game_id, tournament_id,
            "tournament",
        )  # fmt: skip
        self._ensure_rater()
        await self.app.store.append(event)
        changes = await self._rating_of(config, match_id)
        key_a, key_b = (p.key for p in event.participants)
        return {
            "model_a": changes[key_a][1],
            "model_b": changes[key_b][1],
            "changes": {
                model_a_id: changes[key_a][1] - changes[key_a][0],
                model_b_id: changes[key_b][1] - changes[key_b][0],
            },
            "match_id": match_id,
            "config": config,
        }

    async def _match_event(
        self,
        config: str,
        participant_ids: list[str],
        positions: list[int],
        match_id: str,
        game_id: str | None,
        tournament_id: str | None,
        context: str,
    ) -> MatchCompleted:
        if len(positions) != len(participant_ids):
            raise MatchRefused(
                f"{len(participant_ids)} participants but {len(positions)} rankings: "
                f"{participant_ids!r} {positions!r}"
            )
        await self.refresh()
        ranks = ranks_from_positions(positions)
        try:
            participants = [
                MatchParticipant(**self._participant(config, participant_id, rank))
                for participant_id, rank in zip(participant_ids, ranks, strict=True)
            ]
            return MatchCompleted(
                event_id=derive_event_id("elo-service:match", f"{config}:{game_id}")
                if game_id
                else new_event_id(),
                producer=self.producer,
                config=config,
                match_id=match_id,
                participants=participants,
                game_id=game_id,
                context=context,
                context_id=tournament_id,
            )
        except ValidationError as exc:
            reasons = "; ".join(error["msg"] for error in exc.errors())
            raise MatchRefused(f"refused {config} match {participant_ids!r}: {reasons}") from None

    def _participant(self, config: str, participant_id: str, rank: int) -> dict[str, Any]:
        conflict = id_config_conflict(participant_id, config)
        if conflict is not None:
            raise MatchRefused(f"cross-config match refused: {conflict}; ratings are per config")
        registered = self.models.state.get("elo_compat_models", participant_id, config)
        entry: dict[str, Any] = {"participant_id": participant_id, "rank": rank}
        if registered is not None:
            entry.update(config=config, model_sha256=registered["model_sha256"])
        else:
            elsewhere = [
                row["config"]
                for row in self.models.state.rows("elo_compat_models")
                if row["model_id"] == participant_id
            ]
            if elsewhere:  # the event's validator refuses it, naming the configs
                entry["config"] = elsewhere[0]
        return entry

    def _ensure_rater(self) -> None:
        if not self._want_rater or self._rater_task is not None:
            return
        self._rater_task = asyncio.create_task(self._run_rater(), name="elo-service:rater")

    async def _run_rater(self) -> None:
        """The elo-rater in this loop until close(); restarted after a stray fetch timeout.

        Workaround: HandlerRuntime.run catches nats.errors.TimeoutError only, but nats-py's
        fetch can raise a bare asyncio TimeoutError, which would end the rater.
        """
        spec = self.app.handler_spec("elo-rater")
        while not self._closing:
            self._rater = HandlerRuntime(spec, self.app.store)
            try:
                await self._rater.run()
            except TimeoutError:
                continue

    async def _rating_of(self, config: str, match_id: str) -> dict[str, tuple[float, float]]:
        """Wait for the match's EloUpdated in the read model; key -> (before, after)."""

        query = "select rated_seq from elo_matches where config = ? and match_id = ?"

        async def rated() -> int:
            while True:  # what the read model has stored, re-read whenever it advances
                rows = list(self.db.query(query, [config, match_id]))
                if rows and rows[0]["rated_seq"] is not None:
                    return int(rows[0]["rated_seq"])
                await self.elo.wait_for(self.elo.position + 1, self.timeout)

        try:
            seq = await asyncio.wait_for(rated(), self.timeout)
        except TimeoutError:
            hint = "" if self._want_rater else " (rater=False: is an elo-rater running?)"
            raise TimeoutError(
                f"{config} match {match_id!r} not rated within {self.timeout:.0f}s{hint}"
            ) from None
        rows = self.db.query(
            "select participant, before, after from elo_history where config = ? and seq = ?",
            [config, seq],
        )
        return {row["participant"]: (row["before"], row["after"]) for row in rows}

    # ------------------------------------------------------------ reads

    async def leaderboard(self, config: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows with participant, elo, ml_rating, ml_low, ml_high, games, wins, losses, draws."""
        await self.refresh()
        return combined_leaderboard(self.db, config_name(config=config), limit)

    async def get_leaderboard(
        self,
        board_type: object = "square8",
        num_players: int = 2,
        limit: int = 50,
        min_games: int = 0,
        *,
        config: str | None = None,
    ) -> list[dict[str, Any]]:
        await self.refresh()
        config = config_name(board_type, num_players, config)
        return leaderboard_entries(self.db, config, limit, min_games)

    async def get_rating(
        self, participant_id: str, board_type: object = None, num_players: int | None = None,
        *, config: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        await self.refresh()
        config = config_name(board_type, num_players, config)
        return rating_entry(self.db, config, participant_id)

    async def get_head_to_head(
        self,
        participant_a: str,
        participant_b: str,
        board_type: object = None,
        num_players: int | None = None,
        *,
        config: str | None = None,
    ) -> dict[str, Any]:
        await self.refresh()
        config = _optional_config(board_type, num_players, config)
        return head_to_head(self.db, participant_a, participant_b, config)

    async def get_match_history(
        self,
        participant_id: str | None = None,
        tournament_id: str | None = None,
        board_type: object = None,
        num_players: int | None = None,
        limit: int = 100,
        *,
        config: str | None = None,
    ) -> list[dict[str, Any]]:
        await self.refresh()
        config = _optional_config(board_type, num_players, config)
        return match_history(self.db, participant_id, tournament_id, config, limit)

    async def get_rating_history(
        self,
        participant_id: str,
        board_type: object = None,
        num_players: int | None = None,
        limit: int = 100,
        *,
        config: str | None = None,
    ) -> list[dict[str, Any]]:
        await self.refresh()
        config = config_name(board_type, num_players, config)
        return rating_history(self.db, participant_id, config, limit)


def _optional_config(board_type: object, num_players: int | None, config: str | None) -> str | None:
    if config is None and board_type is None and num_players is None:
        return None
    return config_name(board_type, num_players, config)


def _positions_from_winner(model_a: str, model_b: str, winner: str | None) -> list[int]:
    if winner is None or winner == "draw":
        return [0, 0]
    if winner in (model_a, "model_a"):
        return [0, 1]
    if winner in (model_b, "model_b"):
        return [1, 0]
    raise MatchRefused(
        f"winner {winner!r} is neither {model_a!r} nor {model_b!r} (nor 'draw' / None)"
    )


def default_settings() -> Settings:
    """./.ringloop, with its settings.toml when there is one (like the CLI)."""
    path = Path(".ringloop/settings.toml")
    return load_settings(path if path.exists() else None)


# ---------------------------------------------------------------- the synchronous facade


class EloService:
    """RingRift's synchronous EloService: the async core on a private loop in a thread."""

    def __init__(self, settings: Settings | None = None, *, rater: bool = True) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ringloop-elo-service", daemon=True
        )
        self._thread.start()
        try:
            self.core = self._run(AsyncEloService.open(settings, rater=rater))
        except BaseException:
            self._stop_loop()
            raise
        self.timeout = self.core.timeout

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            raise RuntimeError("this EloService is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self.core.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> EloService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def init_elo_database(self) -> EloService:
        self._run(self.core.init_elo_database())
        return self

    def register_model(self, model_id: str, *args: Any, **kwargs: Any) -> None:
        self._run(self.core.register_model(model_id, *args, **kwargs))

    def register_models(self, models: Sequence[Mapping[str, Any]]) -> int:
        return self._run(self.core.register_models(models))

    def update_elo_after_match(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._run(self.core.update_elo_after_match(*args, **kwargs))

    def record_match_and_update(self, *args: Any, **kwargs: Any) -> tuple[str, dict[str, float]]:
        return self._run(self.core.record_match_and_update(*args, **kwargs))

    def leaderboard(self, config: str, limit: int | None = None) -> list[dict[str, Any]]:
        return self._run(self.core.leaderboard(config, limit))

    def get_leaderboard(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._run(self.core.get_leaderboard(*args, **kwargs))

    def get_rating(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._run(self.core.get_rating(*args, **kwargs))

    def get_head_to_head(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._run(self.core.get_head_to_head(*args, **kwargs))

    def get_match_history(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._run(self.core.get_match_history(*args, **kwargs))

    def get_rating_history(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._run(self.core.get_rating_history(*args, **kwargs))


_services: dict[tuple[str, str | None], EloService] = {}
_services_lock = threading.Lock()


def get_elo_service(settings: Settings | None = None, *, rater: bool = True) -> EloService:
    """The process's EloService for a state folder and bus (created on first use)."""
    settings = settings or default_settings()
    key = (str(settings.state_dir.resolve()), settings.nats.url)
    with _services_lock:
        service = _services.get(key)
        if service is None or service._loop.is_closed():
            service = _services[key] = EloService(settings, rater=rater)
        return service


@atexit.register
def close_elo_services() -> None:
    """Close every service get_elo_service made (also run at interpreter exit)."""
    with _services_lock:
        services = list(_services.values())
        _services.clear()
    for service in services:
        service.close()


# ---------------------------------------------------------------- RingRift's module functions


def init_elo_database(settings: Settings | None = None) -> EloService:
    return get_elo_service(settings).init_elo_database()


def register_models(db: EloService, models: Sequence[Mapping[str, Any]]) -> int:
    return db.register_models(models)


def update_elo_after_match(db: EloService, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return db.update_elo_after_match(*args, **kwargs)


def get_leaderboard(db: EloService, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return db.get_leaderboard(*args, **kwargs)


def get_head_to_head(db: EloService, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return db.get_head_to_head(*args, **kwargs)


def get_match_history(db: EloService, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return db.get_match_history(*args, **kwargs)


def get_rating_history(db: EloService, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return db.get_rating_history(*args, **kwargs)


__all__ = [
    "PINNED_RATINGS",
    "AsyncEloService",
    "EloService",
    "MatchRefused",
    "combined_leaderboard",
    "config_name",
    "current_elo_runner",
    "get_elo_service",
]
