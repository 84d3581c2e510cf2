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

This module is the async core (config names, the write path, ``AsyncEloService``);
``ops.elo_queries`` holds the read queries and ``ops.elo_sync`` the synchronous facade.
Every name of the compat layer is importable from here.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import sqlite_utils
from pydantic import ValidationError

from engine.rating import K_FACTOR, PINNED_RATINGS
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
from ops.app import App
from ops.elo_queries import (
    combined_leaderboard,
    head_to_head,
    leaderboard_entries,
    match_history,
    memory_copy,
    rating_entry,
    rating_history,
)
from ops.elo_queries import current_elo_runner as current_elo_runner
from ops.elo_queries import display_names as display_names
from ops.elo_queries import rated_matches as rated_matches
from ops.elo_queries import resolve_keys as resolve_keys
from ops.elo_queries import up_owns_projector as up_owns_projector
from ops.elo_sync import EloService as EloService
from ops.elo_sync import close_elo_services as close_elo_services
from ops.elo_sync import default_settings
from ops.elo_sync import get_elo_service as get_elo_service
from ops.elo_sync import get_head_to_head as get_head_to_head
from ops.elo_sync import get_leaderboard as get_leaderboard
from ops.elo_sync import get_match_history as get_match_history
from ops.elo_sync import get_rating_history as get_rating_history
from ops.elo_sync import init_elo_database as init_elo_database
from ops.elo_sync import register_models as register_models
from ops.elo_sync import update_elo_after_match as update_elo_after_match
from ops.settings import Settings
from projections.base import Projection
from projections.elo import EloProjection
from projections.eventstore import StoredEvent
from projections.runner import ProjectionRunner, open_db
from projections.tables import Table, Tables

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
