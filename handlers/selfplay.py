"""A long-running worker (not a reaction): reads the best model and curriculum; emits GameCompleted.

Each batch: pick a config by the curriculum weights, make sure the config's current best
model is loaded (a ModelPromoted since the last batch swaps the weights in without a
restart; before any model exists the heuristic-guided search tier plays), play
``parallel_games`` games in lock-step with PUCT (Dirichlet noise at the root, temperature
for the opening moves, network leaves batched across games), append one GameCompleted per
game with the root visit distribution of every searched move. Any number of copies run,
but each plays only while it holds a "selfplay" slot of its host (handlers.coordinator,
limit LoopSettings.tasks.selfplay_per_host): refused, it waits and asks again every lease
TTL; once its lease is lost, the batch in hand is dropped and the slot asked for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import structlog
import torch

from engine import GameConfig
from engine.network import load_checkpoint
from engine.players.evaluators import HeuristicRootEvaluator
from engine.players.neural import NetworkEvaluator
from events import CurriculumRebalanced, DaemonHeartbeat, GameCompleted, Producer, SeatAssignment
from handlers.coordinator import KeptLease, TaskCoordinator, TaskRefusedError
from handlers.play_common import (
    Agent,
    Cancelled,
    ModelRef,
    PlayedGame,
    PlaySettings,
    SlotLost,
    best_model,
    checkpoint_cache,
    ensure_held,
    fetch_checkpoint,
    last_event,
    model_agent,
    play_games,
    play_settings,
    tuned,
)
from projections.eventstore import EventStore

NAME = "selfplay"
# While a config has no model: heuristic-guided search whose root priors come from the
# heuristic's one-ply scores, so its visit counts teach the first network something. Not
# the ladder's mcts-<N> tier (uniform root priors), hence its own participant name.
BOOTSTRAP_PARTICIPANT = "bootstrap-mcts-{}"
HEARTBEAT_EVERY_S = 30.0  # a DaemonHeartbeat with throughput figures, at most this often

log = structlog.get_logger(__name__)


# ---------------------------------------------------------------- pure pieces


def game_completed(
    played: PlayedGame,
    *,
    purpose: str,
    game_id: str,
    producer: Producer,
    model_id: str | None = None,
    generation: int = 0,
    **envelope: Any,
) -> GameCompleted:
    """The GameCompleted record of a played game (moves and visits in compact notation).

    ``envelope`` may set event_id, causation_id and correlation_id (derived ids).
    """
    searched = any(v is not None for v in played.visits)
    return GameCompleted(
        **envelope,
        producer=producer,
        config=played.config.name,
        purpose=purpose,  # type: ignore[arg-type]
        game_id=game_id,
        seats=[
            SeatAssignment(seat=i, participant_id=a.participant_id, model_sha256=a.model_sha256)
            for i, a in enumerate(played.seats, 1)
        ],
        winner=played.winner,
        ranking=played.ranking,
        termination=played.termination,
        moves=[m.to_notation() for m in played.moves],
        visits=[
            {m.to_notation(): c for m, c in v.items() if c > 0} if v is not None else {}
            for v in played.visits
        ]
        if searched
        else None,
        root_values=[
            [round(float(x), 4) for x in v] if v is not None else None for v in played.root_values
        ]
        if searched
        else None,
        model_id=model_id,
        generation=generation,
        seed=played.seed,
        duration_s=round(played.duration_s, 4),
    )


def selfplay_agent(
    config: GameConfig,
    settings: PlaySettings,
    network: NetworkEvaluator | None,
    model: ModelRef | None,
) -> Agent:
    """The agent every seat of a selfplay game uses: the best model, else the bootstrap tier."""
    if network is None or model is None or model.artifact is None:
        return Agent(
            BOOTSTRAP_PARTICIPANT.format(settings.bootstrap_simulations),
            evaluator=HeuristicRootEvaluator(root_temperature=settings.bootstrap_root_temperature),
            search=replace(
                settings.search(selfplay=True), simulations=settings.bootstrap_simulations
            ),
            noise=True,
        )
    return model_agent(
        model.model_id, network, settings, selfplay=True, sha256=model.artifact.sha256
    )


def play_selfplay_batch(
    config: GameConfig,
    settings: PlaySettings,
    *,
    seed: int,
    producer: Producer,
    network: NetworkEvaluator | None = None,
    model: ModelRef | None = None,
    games: int | None = None,
    stop: threading.Event | None = None,
) -> list[GameCompleted]:
    """Play a batch of selfplay games (all seats the same agent) and record them."""
    count = games or settings.parallel_games
    agent = selfplay_agent(config, settings, network, model)
    seeds = [_game_seed(seed, i) for i in range(count)]
    played = play_games(config, [[agent] * config.num_players] * count, seeds, settings, stop=stop)
    return [
        game_completed(
            game,
            purpose="selfplay",
            game_id=f"sp-{config.name}-{game.seed:016x}",
            producer=producer,
            model_id=model.model_id if network is not None and model else None,
            generation=model.generation if network is not None and model else 0,
        )
        for game in played
    ]


def _game_seed(batch_seed: int, index: int) -> int:
    return (batch_seed * 1_000_003 + index) & 0xFFFF_FFFF_FFFF_FFFF


def choose_config(
    weights: Mapping[str, float], enabled: Sequence[str], rng: random.Random
) -> GameConfig:
    """A config drawn by curriculum weight among the enabled ones (uniform without weights)."""
    allowed = [(c, float(weights.get(c, 0.0))) for c in enabled]
    if sum(w for _, w in allowed) <= 0:
        allowed = [(c, 1.0) for c in enabled]
    names, values = zip(*allowed, strict=True)
    return GameConfig.parse(rng.choices(names, weights=values)[0])


# ---------------------------------------------------------------- the worker


class ChildPlayer:
    """Plays selfplay batches in one child process (spawned), so the pure-Python search
    does not share a GIL with the trainer and the evaluator of a single-process `up`.

    The child keeps the networks it was sent (by sha256); a checkpoint crosses the
    process boundary once. ``halt`` stops a batch in flight (it raises Cancelled).
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.halt = context.Event()
        self.pool = ProcessPoolExecutor(
            1, mp_context=context, initializer=_child_init, initargs=(self.halt,)
        )
        self.sent: set[str] = set()

    async def play(
        self,
        config: GameConfig,
        settings: PlaySettings,
        seed: int,
        producer: Producer,
        model: ModelRef | None,
        checkpoint: bytes | None,
    ) -> list[GameCompleted]:
        sha = model.artifact.sha256 if model and model.artifact and checkpoint else None
        payload = checkpoint if sha and sha not in self.sent else None
        future = asyncio.get_running_loop().run_in_executor(
            self.pool, _child_play, config.name, settings, seed, producer, model, sha, payload
        )
        records = await future
        if sha:
            self.sent.add(sha)
        return records

    def close(self) -> None:
        self.halt.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


_CHILD: dict[str, Any] = {}


def _child_init(halt: Any) -> None:
    torch.set_num_threads(1)  # one core per selfplay process; the search is the bottleneck
    _CHILD["halt"] = halt
    _CHILD["networks"] = {}


def _child_play(
    config: str,
    settings: PlaySettings,
    seed: int,
    producer: Producer,
    model: ModelRef | None,
    sha: str | None,
    checkpoint: bytes | None,
) -> list[GameCompleted]:
    networks: dict[str, NetworkEvaluator] = _CHILD["networks"]
    if sha is not None and sha not in networks:
        if checkpoint is None:
            raise RuntimeError(f"selfplay child has no checkpoint for {sha}")
        networks.clear()
        networks[sha] = NetworkEvaluator(load_checkpoint(checkpoint)[0])
    return play_selfplay_batch(
        GameConfig.parse(config),
        settings,
        seed=seed,
        producer=producer,
        network=networks.get(sha) if sha else None,
        model=model if sha else None,
        stop=_CHILD["halt"],
    )


@dataclass
class SelfplayWorker:
    """The I/O around the pure pieces: best model per config, curriculum, appending games.

    Batches run in a thread, or in a child process when ``child`` is given.
    """

    store: EventStore
    settings: PlaySettings
    cache_dir: Path
    producer: Producer = field(default_factory=lambda: Producer.current(NAME))
    child: ChildPlayer | None = None
    worker_id: str = field(default_factory=lambda: f"{NAME}-{uuid.uuid4().hex[:12]}")
    loaded: dict[str, tuple[str, bytes, NetworkEvaluator | None]] = field(default_factory=dict)
    batches: int = 0
    games: int = 0
    moves: int = 0
    seconds: float = 0.0

    async def curriculum_weights(self) -> dict[str, float]:
        found = await last_event(self.store, "loop.curriculum.rebalanced")
        if found is None or not isinstance(found[1], CurriculumRebalanced):
            return {}
        return dict(found[1].weights)

    async def network_for(self, config: str) -> tuple[ModelRef | None, NetworkEvaluator | None]:
        """The config's best model, loaded once per sha256 (a promotion swaps it in)."""
        model, checkpoint = await self._checkpoint_for(config)
        if model is None or checkpoint is None:
            return None, None
        sha, data, network = self.loaded[config]
        if network is None:
            network = NetworkEvaluator(load_checkpoint(data)[0])
            self.loaded[config] = (sha, data, network)
        return model, network

    async def _checkpoint_for(self, config: str) -> tuple[ModelRef | None, bytes | None]:
        model = await best_model(self.store, config)
        if model is None or model.artifact is None:
            return None, None
        current = self.loaded.get(config)
        if current is None or current[0] != model.artifact.sha256:
            data = await fetch_checkpoint(self.store, model.artifact, self.cache_dir)
            self.loaded[config] = (model.artifact.sha256, data, None)
            log.info("selfplay_model_loaded", config=config, model_id=model.model_id)
        return model, self.loaded[config][1]

    async def batch(
        self,
        rng: random.Random,
        stop: threading.Event | None = None,
        kept: KeptLease | None = None,
    ) -> list[GameCompleted]:
        """Play and append one batch; returns the games appended. With ``kept``, the batch
        is appended only while that slot's lease still holds (SlotLost otherwise)."""
        config = choose_config(await self.curriculum_weights(), self.settings.configs, rng)
        settings = await tuned(self.store, config.name, self.settings)
        seed = rng.getrandbits(63)
        started = time.perf_counter()
        if self.child is not None:
            model, checkpoint = await self._checkpoint_for(config.name)
            records = await self.child.play(
                config, settings, seed, self.producer, model, checkpoint
            )
        else:
            model, network = await self.network_for(config.name)
            records = await asyncio.to_thread(
                play_selfplay_batch,
                config,
                settings,
                seed=seed,
                producer=self.producer,
                network=network,
                model=model,
                stop=stop,
            )
        self.seconds += time.perf_counter() - started
        await ensure_held(kept, f"selfplay worker {self.worker_id!r}")
        await self.store.append_many(records)
        self.batches += 1
        self.games += len(records)
        self.moves += sum(len(r.moves) for r in records)
        return records

    def heartbeat(self) -> DaemonHeartbeat:
        rate = self.seconds or 1e-9
        return DaemonHeartbeat(
            producer=self.producer,
            daemon=NAME,
            stats={
                "games": self.games,
                "moves": self.moves,
                "games_per_s": self.games / rate,
                "moves_per_s": self.moves / rate,
            },
        )


class AppLike(Protocol):
    """What the worker needs of ops.app.App (handlers do not import ops)."""

    store: EventStore

    @property
    def settings(self) -> Any: ...


async def run(app: AppLike, stop: asyncio.Event) -> SelfplayWorker:
    """The selfplay daemon of a process: `ringloop run selfplay`, `ringloop up`."""
    settings = play_settings(app.settings.loop)
    tasks = TaskCoordinator(app.store, app.settings.loop, Producer.current(NAME))
    return await run_worker(app.store, settings, app.settings.state_dir, stop, tasks=tasks)


async def run_worker(
    store: EventStore,
    settings: PlaySettings,
    state_dir: Path,
    stop: asyncio.Event,
    *,
    seed: int | None = None,
    max_batches: int | None = None,
    tasks: TaskCoordinator | None = None,
) -> SelfplayWorker:
    """Play batches until ``stop`` is set (a batch in flight is abandoned, never half-appended),
    holding a selfplay slot of this host throughout when ``tasks`` is given.

    With ``settings.selfplay_processes`` > 0 the games are played in a child process.
    """
    child = ChildPlayer() if settings.selfplay_processes > 0 else None
    worker = SelfplayWorker(store, settings, checkpoint_cache(state_dir), child=child)
    rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8)))
    halt = threading.Event()
    watcher = asyncio.create_task(_relay(stop, halt, child))
    session = _Session(worker, rng, halt, stop, max_batches)
    try:
        if tasks is None:
            await session.play(None)
        else:
            await _play_in_slots(session, tasks)
    finally:
        watcher.cancel()
        if child is not None:
            await asyncio.to_thread(child.close)
    return worker


@dataclass
class _Session:
    """A worker's batches until stopped (or ``max_batches`` are appended), with heartbeats."""

    worker: SelfplayWorker
    rng: random.Random
    halt: threading.Event
    stop: asyncio.Event
    max_batches: int | None
    last_beat: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        spent = self.max_batches is not None and self.worker.batches >= self.max_batches
        return self.stop.is_set() or spent or self.halt.is_set()

    async def play(self, kept: KeptLease | None) -> None:
        """Batches while not done and the slot (if any) is not known lost."""
        while not self.done and not (kept is not None and kept.lost.is_set()):
            try:
                await self.worker.batch(self.rng, self.halt, kept)
            except Cancelled:
                return
            if time.monotonic() - self.last_beat >= HEARTBEAT_EVERY_S:
                await self.worker.store.append(self.worker.heartbeat())
                self.last_beat = time.monotonic()


async def _play_in_slots(session: _Session, tasks: TaskCoordinator) -> None:
    """Play while holding a selfplay slot; refused, wait a lease TTL (stop-aware) and ask
    again; a lost slot (SlotLost, or lost between batches) is asked for again."""
    worker, waiting = session.worker, False
    while not session.done:
        try:
            async with tasks.task("selfplay", worker.worker_id) as kept:
                waiting = False
                await session.play(kept)
                await ensure_held(kept, f"selfplay worker {worker.worker_id!r}")
        except TaskRefusedError as exc:
            if not waiting:
                log.info("selfplay_waiting_for_slot", worker=worker.worker_id, reason=str(exc))
                waiting = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.stop.wait(), tasks.settings.tasks.lease_ttl_s)
        except SlotLost as exc:
            log.warning("selfplay_slot_lost", worker=worker.worker_id, error=str(exc))


async def _relay(stop: asyncio.Event, halt: threading.Event, child: ChildPlayer | None) -> None:
    await stop.wait()
    halt.set()
    if child is not None:
        child.halt.set()
