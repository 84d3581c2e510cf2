"""Shared by the play stages (selfplay, trainer, evaluator, tournaments): knobs, agents, batched games.

The pure pieces: the play settings, agents (models and engine.tiers), and a driver that
plays many games in lock-step so every search leaf of every game is sent to the network in
one batch. The I/O pieces (last sections): the best model of a config, read from the log,
checkpoints in the Object Store, and the cluster slot (coordinator lease) a stage holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from nats.js.errors import NotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine import GameConfig, GameState, Move
from engine.network import load_checkpoint
from engine.players.base import Player, terminal_values
from engine.players.evaluators import Evaluator, HeuristicEvaluator
from engine.players.heuristic import HeuristicPlayer, HeuristicWeights, player_scores
from engine.players.mcts import SearchSettings, SearchTree, choose_move, expand_roots, simulate
from engine.players.neural import NetworkEvaluator, absolute_to_relative
from engine.players.random_player import RandomPlayer
from engine.tiers import tier
from events import (
    ArtifactRef,
    Event,
    FeedbackSignalRaised,
    ModelRegistered,
    ModelRolledBack,
    decode,
)
from events.streams import LOG_STREAM, MODELS_BUCKET
from handlers.coordinator import KeptLease, TaskCoordinator, TaskRefusedError
from handlers.feedback import BATCH_SIZE, DIRICHLET_FRACTION
from handlers.runtime import TransientError, Waiting
from handlers.settings import LoopSettings
from projections.eventstore import EventStore

# ---------------------------------------------------------------- settings


class PlaySettings(BaseModel):
    """The knobs of the play stages, flattened from LoopSettings (handlers.settings).

    Built by ``PlaySettings.from_loop``; the fields marked "play only" are not in
    LoopSettings yet and take their defaults here (per preset).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # search: selfplay.* (evaluation uses the same settings at evaluation.simulations)
    simulations: int = Field(default=200, ge=1)
    eval_simulations: int = Field(default=100, ge=1)
    c_puct: float = Field(default=1.5, gt=0, description="play only")
    dirichlet_alpha: float = Field(default=0.3, gt=0)
    dirichlet_fraction: float = Field(default=0.25, ge=0, le=1)
    temperature: float = Field(default=1.0, ge=0)
    temperature_moves: int = Field(default=20, ge=0)
    eval_temperature_moves: int = Field(
        default=4, ge=0, description="play only: opening moves sampled by visits in eval games"
    )
    max_moves: int = Field(default=400, ge=1, description="moves before adjudication")
    adjudication: Literal["heuristic", "draw"] = Field(
        default="heuristic",
        description="play only: a capped game ranks seats by heuristic score, or all equal",
    )
    parallel_games: int = Field(default=8, ge=1, description="selfplay games per batch")
    bootstrap_simulations: int = Field(
        default=64, ge=1, description="play only: heuristic-guided search before any model"
    )
    bootstrap_root_temperature: float = Field(
        default=0.1,
        gt=0,
        description="play only: softmax temperature of the bootstrap search's one-ply root priors",
    )
    configs: tuple[str, ...] = ("square8_2p",)
    selfplay_processes: int = Field(
        default=1, ge=0, le=1, description="play only: 1 = games in a child process, 0 = thread"
    )
    # training.*
    blocks: dict[str, int] = Field(default_factory=dict)
    channels: dict[str, int] = Field(default_factory=dict)
    epochs: int = Field(default=4, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    amp: bool = True
    window_games: int = Field(default=20_000, ge=1)
    window_generations: int = Field(default=4, ge=1)
    value_search_weight: float = Field(default=0.5, ge=0, le=1)
    augment: bool = Field(default=True, description="play only: random board symmetry")
    # evaluation.*
    eval_games: int = Field(default=200, ge=1, description="most games against the best")
    baseline_games: int = Field(default=40, ge=1, description="games against each baseline")
    eval_round: int = Field(default=8, ge=1, description="play only: games per SPRT check")
    eval_baselines: tuple[str, ...] = ("random", "heuristic")
    sprt_elo0: float = 0.0
    sprt_elo1: float = 10.0
    sprt_alpha: float = Field(default=0.05, gt=0, lt=0.5)
    sprt_beta: float = Field(default=0.05, gt=0, lt=0.5)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    # delivery (play only): redelivery delay after a crash; heartbeats keep live work alive
    ack_wait_s: float = Field(default=30.0, gt=0)

    @classmethod
    def from_loop(cls, loop: LoopSettings, **play_only: Any) -> PlaySettings:
        sp, tr, ev = loop.selfplay, loop.training, loop.evaluation
        extras = {**(TINY_PLAY_ONLY if loop.preset == "tiny" else {}), **play_only}
        return cls(
            simulations=sp.simulations,
            eval_simulations=ev.simulations,
            dirichlet_alpha=sp.dirichlet_alpha,
            dirichlet_fraction=sp.dirichlet_fraction,
            temperature=sp.temperature,
            temperature_moves=sp.temperature_moves,
            max_moves=sp.max_moves,
            parallel_games=sp.games_per_task,
            configs=loop.configs,
            blocks={b: n.blocks for b, n in tr.networks.items()},
            channels={b: n.channels for b, n in tr.networks.items()},
            epochs=tr.epochs,
            batch_size=tr.batch_size,
            learning_rate=tr.learning_rate,
            weight_decay=tr.weight_decay,
            amp=tr.amp,
            window_games=tr.window_games,
            window_generations=tr.window_generations,
            value_search_weight=tr.value_search_weight,
            eval_games=ev.games,
            baseline_games=ev.baseline_games,
            sprt_elo0=ev.sprt.elo0,
            sprt_elo1=ev.sprt.elo1,
            sprt_alpha=ev.sprt.alpha,
            sprt_beta=ev.sprt.beta,
            confidence=ev.confidence,
            **extras,
        )

    def search(self, *, selfplay: bool) -> SearchSettings:
        return SearchSettings(
            simulations=self.simulations if selfplay else self.eval_simulations,
            c_puct=self.c_puct,
            dirichlet_alpha=self.dirichlet_alpha,
            dirichlet_fraction=self.dirichlet_fraction if selfplay else 0.0,
            temperature=self.temperature,
            temperature_moves=self.temperature_moves if selfplay else self.eval_temperature_moves,
        )

    def network_size(self, config: GameConfig) -> tuple[int, int]:
        return self.blocks.get(config.board, 6), self.channels.get(config.board, 64)


TINY_PLAY_ONLY: dict[str, Any] = {
    "bootstrap_simulations": 8,
    "eval_round": 4,
    "ack_wait_s": 3.0,
}


def play_settings(
    loop: LoopSettings | dict[str, Any] | None = None, **play_only: Any
) -> PlaySettings:
    """PlaySettings from the loop settings (or a ``[loop]`` table, validated here)."""
    if not isinstance(loop, LoopSettings):
        loop = LoopSettings.validated(dict(loop or {}))
    try:
        return PlaySettings.from_loop(loop, **play_only)
    except ValidationError as exc:
        raise ValueError(f"play settings: {exc}") from None


# ---------------------------------------------------------------- network evaluation


# ---------------------------------------------------------------- agents and the game driver


@dataclass(frozen=True)
class Agent:
    """One seat's player: a search over an evaluator, or a direct player (random, heuristic)."""

    participant_id: str
    evaluator: Evaluator | None = None
    search: SearchSettings | None = None
    player: Player | None = None
    noise: bool = False
    model_sha256: str | None = None

    def __post_init__(self) -> None:
        if (self.evaluator is None) == (self.player is None):
            raise ValueError(f"agent {self.participant_id!r} needs an evaluator or a player")
        if self.evaluator is not None and self.search is None:
            raise ValueError(f"search agent {self.participant_id!r} needs SearchSettings")


def tier_agent(name: str, settings: PlaySettings) -> Agent:
    """An agent for a tier of engine.tiers: random, heuristic, mcts-<N> (heuristic-guided), d1-d5."""
    chosen = tier(name)
    if chosen.simulations == 0:
        player = RandomPlayer() if chosen.name == "random" else HeuristicPlayer()
        return Agent(chosen.name, player=player)
    search = replace(settings.search(selfplay=False), simulations=chosen.simulations)
    return Agent(chosen.name, evaluator=HeuristicEvaluator(), search=search)


def model_agent(
    participant_id: str,
    evaluator: NetworkEvaluator,
    settings: PlaySettings,
    *,
    selfplay: bool,
    sha256: str | None,
) -> Agent:
    return Agent(
        participant_id,
        evaluator=evaluator,
        search=settings.search(selfplay=selfplay),
        noise=selfplay,
        model_sha256=sha256,
    )


@dataclass
class PlayedGame:
    """A finished game: seats in order, moves, per-move visits and root values (None: not
    searched)."""

    config: GameConfig
    seats: list[Agent]
    seed: int
    moves: list[Move] = field(default_factory=list)
    visits: list[dict[Move, int] | None] = field(default_factory=list)
    root_values: list[np.ndarray | None] = field(default_factory=list)
    ranking: list[int] = field(default_factory=list)
    winner: int | None = None
    termination: str = "normal"
    duration_s: float = 0.0


class _Table:
    """One game in progress inside the lock-step driver."""

    def __init__(self, config: GameConfig, seats: list[Agent], seed: int) -> None:
        self.state = GameState.initial(config)
        self.record = PlayedGame(config, seats, seed)
        self.rng = random.Random(seed)
        self.noise_rng = np.random.default_rng(seed)
        self.started = time.perf_counter()

    @property
    def agent(self) -> Agent:
        return self.record.seats[self.state.current_player - 1]

    def play(
        self, move: Move, visits: dict[Move, int] | None, root_value: np.ndarray | None = None
    ) -> None:
        self.record.moves.append(move)
        self.record.visits.append(visits)
        self.record.root_values.append(root_value)
        self.state.apply_unchecked(move)


class Cancelled(RuntimeError):
    """The game batch was abandoned because its worker is stopping."""


def play_games(
    config: GameConfig,
    seatings: Sequence[Sequence[Agent]],
    seeds: Sequence[int],
    settings: PlaySettings,
    *,
    stop: threading.Event | None = None,
) -> list[PlayedGame]:
    """Play one game per seating in lock-step; search leaves are evaluated in shared batches."""
    tables = [_Table(config, list(s), seed) for s, seed in zip(seatings, seeds, strict=True)]
    for seats in seatings:
        if len(seats) != config.num_players:
            raise ValueError(f"{config.name} needs {config.num_players} seats, got {len(seats)}")
    while active := [t for t in tables if not _finished(t, settings)]:
        if stop is not None and stop.is_set():
            raise Cancelled(f"stopped with {len(active)} games of {config.name} unfinished")
        searching = _play_direct_moves(active)
        for group in _groups(searching).values():
            _search_step(group)
    return [_finish(t, settings) for t in tables]


def _finished(table: _Table, settings: PlaySettings) -> bool:
    return table.state.is_over or len(table.record.moves) >= settings.max_moves


def _play_direct_moves(tables: list[_Table]) -> list[_Table]:
    """Play the moves that need no search; return the tables whose mover must search."""
    searching = []
    for table in tables:
        agent, moves = table.agent, table.state.legal_moves()
        if agent.player is not None:
            table.play(agent.player.select_move(table.state, table.rng), None)
        elif len(moves) == 1:
            table.play(moves[0], None)
        else:
            searching.append(table)
    return searching


def _groups(tables: list[_Table]) -> dict[tuple[int, int], list[_Table]]:
    groups: dict[tuple[int, int], list[_Table]] = {}
    for table in tables:
        agent = table.agent
        assert agent.search is not None
        groups.setdefault((id(agent.evaluator), agent.search.simulations), []).append(table)
    return groups


def _search_step(tables: list[_Table]) -> None:
    """One move in each table: simulations in lock-step, one evaluator batch per simulation."""
    evaluator = tables[0].agent.evaluator
    assert evaluator is not None
    trees = [SearchTree(t.state, t.agent.search) for t in tables]  # type: ignore[arg-type]
    expand_roots(trees, evaluator)
    for table, tree in zip(tables, trees, strict=True):
        if table.agent.noise:
            tree.add_noise(table.noise_rng)
    for _ in range(tree.settings.simulations - 1):
        simulate(trees, evaluator)
    for table, tree in zip(tables, trees, strict=True):
        search = tree.settings
        visits = tree.visits()
        hot = table.state.move_count < search.temperature_moves
        move = choose_move(visits, search.temperature if hot else 0.0, table.rng)
        table.play(move, visits, tree.root_value())


def _finish(table: _Table, settings: PlaySettings) -> PlayedGame:
    record, state = table.record, table.state
    if state.is_over:
        record.ranking = state.ranking()
        record.winner = state.winner
        record.termination = state.victory_reason or "normal"
    else:
        record.ranking = adjudicate(state, settings.adjudication)
        record.termination = f"max_moves_{settings.adjudication}"
        firsts = [seat for seat, rank in enumerate(record.ranking, 1) if rank == 1]
        record.winner = firsts[0] if len(firsts) == 1 else None
    record.duration_s = time.perf_counter() - table.started
    return record


def adjudicate(state: GameState, how: str) -> list[int]:
    """Ranks of an unfinished (capped) game: by heuristic score, or everyone equal."""
    if how == "draw":
        return [1] * state.num_players
    scores = player_scores(state, HeuristicWeights())
    return [1 + int((scores > score + 1e-9).sum()) for score in scores]


def seat_values(ranking: Sequence[int], current_player: int) -> np.ndarray:
    """Value targets in seat order relative to ``current_player`` (the network's frame)."""
    from engine.players.base import rank_values

    return absolute_to_relative(rank_values(ranking), current_player).astype(np.float32)


def rotated_seatings(participants: Sequence[Agent], games: int) -> list[list[Agent]]:
    """Seatings for ``games`` games rotating every participant through every seat."""
    n = len(participants)
    return [[participants[(g + s) % n] for s in range(n)] for g in range(games)]


__all__ = [
    "Agent",
    "Cancelled",
    "NetworkEvaluator",
    "PlaySettings",
    "PlayedGame",
    "adjudicate",
    "model_agent",
    "play_games",
    "play_settings",
    "rotated_seatings",
    "seat_values",
    "terminal_values",
    "tier_agent",
]


# ---------------------------------------------------------------- models: registry and Object Store
#
# Small reads of the log, usable from any process without a read model: the best model
# of a config is the newest ModelPromoted (or ModelRolledBack) on its subject, and its
# artifact is named by the model's ModelRegistered.


@dataclass(frozen=True)
class ModelRef:
    """A registered model: where its weights are and which generation it is."""

    config: str
    model_id: str
    artifact: ArtifactRef | None
    generation: int = 0


async def last_event(store: EventStore, subject: str) -> tuple[int, Event] | None:
    """The newest event on an exact subject of the log, with its sequence."""
    try:
        msg = await store.js.get_last_msg(LOG_STREAM, subject)
    except NotFoundError:
        return None
    return int(msg.seq or 0), decode(msg.data or b"")


async def best_model(store: EventStore, config: str) -> ModelRef | None:
    """The config's current best model (None while it has none)."""
    promoted = await last_event(store, f"loop.model.promoted.{config}")
    rolled = await last_event(store, f"loop.model.rolled_back.{config}")
    newest = max((e for e in (promoted, rolled) if e is not None), default=None)
    if newest is None:
        return None
    event = newest[1]
    model_id = (
        event.restored_model_id if isinstance(event, ModelRolledBack) else event.model_id  # type: ignore[attr-defined]
    )
    return await registered_model(store, config, model_id)


async def registered_model(store: EventStore, config: str, model_id: str) -> ModelRef | None:
    """The model's registration (None if it was never registered)."""
    found = None
    async for stored in store.read(LOG_STREAM, f"loop.model.registered.{config}"):
        event = stored.event
        if isinstance(event, ModelRegistered) and event.model_id == model_id:
            found = ModelRef(config, model_id, event.artifact, event.generation)
    return found


async def has_any_model(store: EventStore, config: str) -> bool:
    return await last_event(store, f"loop.model.registered.{config}") is not None


async def feedback_knobs(store: EventStore, config: str) -> dict[str, float]:
    """The newest value of every knob feedback moved for a config (knob name -> value)."""
    knobs: dict[str, float] = {}
    async for stored in store.read(LOG_STREAM, f"loop.feedback.raised.{config}"):
        if isinstance(stored.event, FeedbackSignalRaised):
            knobs[stored.event.knob] = stored.event.new_value
    return knobs


async def tuned(store: EventStore, config: str, settings: PlaySettings) -> PlaySettings:
    """The settings with the knobs feedback moved for this config (exploration, batch size)."""
    knobs = await feedback_knobs(store, config)
    update: dict[str, Any] = {}
    if DIRICHLET_FRACTION in knobs:
        update["dirichlet_fraction"] = knobs[DIRICHLET_FRACTION]
    if BATCH_SIZE in knobs:
        update["batch_size"] = max(1, int(knobs[BATCH_SIZE]))
    return settings.model_copy(update=update) if update else settings


def checkpoint_cache(state_dir: Path) -> Path:
    path = state_dir / "cache" / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def fetch_checkpoint(store: EventStore, artifact: ArtifactRef, cache_dir: Path) -> bytes:
    """The checkpoint bytes, from the local cache or the Object Store, sha256 verified."""
    cached = cache_dir / f"{artifact.sha256}.pt"
    if cached.exists():
        return cached.read_bytes()
    _, data = await store.get_object(artifact.bucket, artifact.name)
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256:
        raise ValueError(
            f"object {artifact.bucket}/{artifact.name} has sha256 {digest}, "
            f"the registry says {artifact.sha256}"
        )
    temporary = cached.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.replace(cached)
    return data


async def put_checkpoint(store: EventStore, name: str, data: bytes) -> ArtifactRef:
    """Store checkpoint bytes in the models bucket; the ref carries their sha256 and size."""
    await store.put_object(MODELS_BUCKET, name, data)
    return ArtifactRef(
        bucket=MODELS_BUCKET, name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )


async def load_network(
    store: EventStore, model: ModelRef, cache_dir: Path
) -> tuple[NetworkEvaluator, str]:
    """A NetworkEvaluator for a registered model (weights_only load) and its sha256."""
    if model.artifact is None:
        raise ValueError(f"model {model.model_id!r} of {model.config} has no artifact")
    data = await fetch_checkpoint(store, model.artifact, cache_dir)
    network, _ = load_checkpoint(data)
    return NetworkEvaluator(network), model.artifact.sha256


# ---------------------------------------------------------------- cluster slots


class SlotBusy(Waiting):
    """Every slot of the task type is taken (TaskRefused was appended): retried later."""


class SlotLost(TransientError):
    """The slot's lease expired or was taken: the work's result is not published."""


@contextlib.asynccontextmanager
async def task_slot(
    tasks: TaskCoordinator | None, task_type: str, task_id: str
) -> AsyncIterator[KeptLease | None]:
    """Hold a cluster slot for the block (none without a coordinator); SlotBusy when refused."""
    if tasks is None:
        yield None
        return
    async with contextlib.AsyncExitStack() as stack:
        try:
            kept = await stack.enter_async_context(tasks.task(task_type, task_id))
        except TaskRefusedError as exc:
            raise SlotBusy(str(exc)) from exc
        yield kept


async def ensure_held(kept: KeptLease | None, work: str) -> None:
    """Raise SlotLost unless the lease still holds its key (checked on the bus, not only by
    the renewal): called right before a result is published."""
    if kept is None:
        return
    _, holder = await kept.leases.read(kept.lease.key)
    if kept.lost.is_set() or holder != kept.lease.holder:
        raise SlotLost(f"{work} lost its slot {kept.lease.key!r}; its result is not published")
