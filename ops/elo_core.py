"""The compat layer's async core: RingRift's Elo writes append events, its reads query the Elo read model.

``AsyncEloService`` (for async callers; ``ops.elo_sync`` wraps it for RingRift's synchronous
API) appends ModelRegistered and MatchCompleted, runs an elo-rater until close, waits for
the EloUpdated of each result, and answers reads from ``ops.elo_queries``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.rating import K_FACTOR
from events import LOG_STREAM, MatchCompleted, ModelRegistered, Producer, derive_event_id
from events.envelope import new_event_id
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.elo_arguments import (
    MatchRefused,
    config_name,
    match_event,
    optional_config,
    positions_from_winner,
)
from ops.elo_models import RegisteredModels, file_sha256
from ops.elo_queries import (
    combined_leaderboard,
    head_to_head,
    leaderboard_entries,
    match_history,
    memory_copy,
    rating_entry,
    rating_history,
)
from ops.settings import Settings, load_settings
from projections.elo import EloProjection
from projections.runner import ProjectionRunner, open_db


def default_settings() -> Settings:
    """./.ringloop, with its settings.toml when there is one (like the CLI)."""
    path = Path(".ringloop/settings.toml")
    return load_settings(path if path.exists() else None)


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
        sha = await asyncio.to_thread(file_sha256, model_path)
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
        positions = positions_from_winner(model_a_id, model_b_id, winner)
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
        if len(positions) == len(participant_ids):  # a count mismatch is refused without waiting
            await self.refresh()  # for the registered models as of now
        return match_event(
            self.models.state, self.producer, config, participant_ids, positions, match_id,
            game_id, tournament_id, context,
        )  # fmt: skip

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
        config = optional_config(board_type, num_players, config)
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
        config = optional_config(board_type, num_players, config)
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
