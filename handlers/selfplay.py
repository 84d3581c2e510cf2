"""A long-running worker (not a reaction): reads the best model and curriculum; emits GameCompleted.

Each batch: pick a config by the curriculum weights, make sure the config's current best
model is loaded (a ModelPromoted since the last batch swaps the weights in without a
restart; before any model exists the heuristic-guided search tier plays), play
``games_per_task`` games, ``parallel_games`` (per device) at a time with continuous batching,
searching with PUCT (Dirichlet noise at the root, temperature for the opening moves) or
Gumbel (``selfplay.search``), network leaves batched across games; append one GameCompleted per
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
import signal
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from engine import GameConfig
from engine.players.mcts import SearchSettings
from events import DaemonHeartbeat, Event, GameCompleted, ModelPromoted, ModelRolledBack, Producer
from handlers.agents import bootstrap_agent, model_agent, search_settings
from handlers.allocator import keep_freed_memory
from handlers.coordinator import KeptLease, TaskCoordinator, TaskRefusedError
from handlers.feedback import knobs
from handlers.games import Cancelled, game_completed, play_games
from handlers.inference import InferenceUnavailable, inference_socket, selfplay_evaluator
from handlers.models import ModelRef, best_model, checkpoint_cache, fetch_checkpoint
from handlers.runtime import Consumer
from handlers.settings import LoopSettings
from handlers.slots import SlotLost, ensure_held
from projections.curriculum import weights as curriculum_weights
from projections.eventstore import EventStore
from projections.tables import Tables

if TYPE_CHECKING:
    from engine.players.neural import NetworkEvaluator
    from handlers.inference import SharedEvaluator

NAME = "selfplay"


def consumer(settings: LoopSettings) -> Consumer:
    """Every selfplay process sees every promotion (its own consumer of new events)."""
    return Consumer(batch=8, per_process=True)


HEARTBEAT_EVERY_S = 30.0  # a DaemonHeartbeat with throughput figures, at most this often

log = structlog.get_logger(__name__)


# ---------------------------------------------------------------- pure pieces


def selfplay_search(
    loop: LoopSettings, feedback: Tables, config: str, *, bootstrap: bool
) -> SearchSettings:
    """Selfplay's search for a config: with feedback's exploration knob; the bootstrap
    budget while the config has no model."""
    fraction = knobs(feedback, config, loop).dirichlet_fraction
    return search_settings(
        loop, "bootstrap" if bootstrap else "selfplay", dirichlet_fraction=fraction
    )


def play_selfplay_batch(
    config: GameConfig,
    loop: LoopSettings,
    search: SearchSettings,
    *,
    seed: int,
    producer: Producer,
    network: NetworkEvaluator | SharedEvaluator | None = None,
    model: ModelRef | None = None,
    games: int | None = None,
    stop: threading.Event | None = None,
) -> list[GameCompleted]:
    """Play a batch of selfplay games (all seats the same agent) and record them: the best
    model's search, or the bootstrap search while the config has none."""
    count = games or loop.selfplay.games_per_task
    with_model = network is not None and model is not None and model.artifact is not None
    agent = (
        model_agent(model.model_id, network, search, sha256=model.artifact.sha256, noise=True)  # type: ignore[union-attr, arg-type]
        if with_model
        else bootstrap_agent(loop, search)
    )
    seeds = [_game_seed(seed, i) for i in range(count)]
    device = network.device.type if with_model and network is not None else "cpu"
    played = play_games(config, [[agent] * config.num_players] * count, seeds,
                        max_moves=loop.selfplay.max_moves, adjudication=loop.selfplay.adjudication,
                        stop=stop, parallel=loop.selfplay.parallel_for(device),
                        pipeline=loop.selfplay.pipeline_interval_s())  # fmt: skip
    return [
        game_completed(
            game,
            purpose="selfplay",
            game_id=f"sp-{config.name}-{game.seed:016x}",
            producer=producer,
            model_id=model.model_id if with_model and model else None,
            generation=model.generation if with_model and model else 0,
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
        loop: LoopSettings,
        search: SearchSettings,
        seed: int,
        producer: Producer,
        model: ModelRef | None,
        checkpoint: bytes | None,
        socket_path: Path | None = None,
    ) -> list[GameCompleted]:
        sha = model.artifact.sha256 if model and model.artifact and checkpoint else None
        payload = checkpoint if sha and sha not in self.sent else None
        future = asyncio.get_running_loop().run_in_executor(
            self.pool, _child_play, config.name, loop, search, seed, producer, model, sha, payload,
            socket_path,
        )  # fmt: skip
        try:
            records = await future
        except InferenceUnavailable:
            self.sent.discard(sha or "")  # the child dropped it; the next batch sends it again
            raise
        if sha:
            self.sent = {sha}  # the child keeps only the network it played last (_child_play)
        return records

    def close(self) -> None:
        self.halt.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


_CHILD: dict[str, Any] = {}


def _child_init(halt: Any) -> None:
    import torch

    # A terminal's Ctrl-C reaches the whole process group, this child too: it must not die
    # of it mid-batch (its KeyboardInterrupt would surface in the parent, which would then
    # exit without draining). The parent stops it through `halt`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    torch.set_num_threads(1)  # one core per selfplay process; the search is the bottleneck
    keep_freed_memory()  # its forward passes run in the pipeline's thread (handlers.allocator)
    _CHILD["halt"] = halt
    _CHILD["networks"] = {}


def _child_play(
    config: str,
    loop: LoopSettings,
    search: SearchSettings,
    seed: int,
    producer: Producer,
    model: ModelRef | None,
    sha: str | None,
    checkpoint: bytes | None,
    socket_path: Path | None = None,
) -> list[GameCompleted]:
    networks: dict[str, Any] = _CHILD["networks"]
    if sha is not None and sha not in networks:
        if checkpoint is None:
            raise RuntimeError(f"selfplay child has no checkpoint for {sha}")
        _drop(networks)
        networks[sha] = selfplay_evaluator(loop, sha, checkpoint, socket_path)
    try:
        return play_selfplay_batch(
            GameConfig.parse(config),
            loop,
            search,
            seed=seed,
            producer=producer,
            network=networks.get(sha) if sha else None,
            model=model if sha else None,
            stop=_CHILD["halt"],
        )
    except InferenceUnavailable:
        _drop(networks)  # the next batch reconnects, or plays with a network of its own
        raise


def _drop(networks: dict[str, Any]) -> None:
    """Forget the child's evaluators, closing a shared one's connection to the service."""
    for evaluator in networks.values():
        if hasattr(evaluator, "close"):
            evaluator.close()
    networks.clear()


@dataclass
class SelfplayWorker:
    """The I/O around the pure pieces: the model each config plays with, the curriculum's
    choice of config, appending games. Reads come from read models followed in this process
    (``views``: registry, curriculum, feedback); the model of a config changes only when a
    ModelPromoted or ModelRolledBack reaches `on_model_changed` (or at start-up).

    Batches run in a thread, or in a child process when ``child`` is given.
    """

    store: EventStore
    settings: LoopSettings
    views: Mapping[str, Tables]
    cache_dir: Path
    producer: Producer = field(default_factory=lambda: Producer.current(NAME))
    child: ChildPlayer | None = None
    worker_id: str = field(default_factory=lambda: f"{NAME}-{uuid.uuid4().hex[:12]}")
    models: dict[str, ModelRef | None] = field(default_factory=dict)
    loaded: dict[str, tuple[str, bytes, Any]] = field(default_factory=dict)
    inference_socket: Path | None = None  # the host's shared inference service (if used)
    batches: int = 0
    games: int = 0
    moves: int = 0
    seconds: float = 0.0

    def model_of(self, config: str) -> ModelRef | None:
        """The model a config's games are played with (the registry's best at first use)."""
        if config not in self.models:
            self.models[config] = best_model(self.views["registry"], config)
        return self.models[config]

    def swap(self, config: str, registry: Tables) -> None:
        """Play the config's next batch with the registry's current best."""
        model = best_model(registry, config)
        if model != self.models.get(config):
            log.info("selfplay_model_swapped", config=config,
                     model_id=model.model_id if model else None, worker=self.worker_id)  # fmt: skip
        self.models[config] = model

    async def _checkpoint_for(self, config: str) -> tuple[ModelRef | None, bytes | None]:
        model = self.model_of(config)
        if model is None or model.artifact is None:
            return None, None
        current = self.loaded.get(config)
        if current is None or current[0] != model.artifact.sha256:
            data = await fetch_checkpoint(self.store, model.artifact, self.cache_dir)
            self.loaded[config] = (model.artifact.sha256, data, None)
            log.info("selfplay_model_loaded", config=config, model_id=model.model_id)
        return model, self.loaded[config][1]

    async def _network_for(self, config: str) -> tuple[ModelRef | None, Any]:
        model, checkpoint = await self._checkpoint_for(config)
        if model is None or checkpoint is None:
            return None, None
        sha, data, network = self.loaded[config]
        if network is None:
            network = selfplay_evaluator(self.settings, sha, data, self.inference_socket)
            self.loaded[config] = (sha, data, network)
        return model, network

    async def batch(
        self,
        rng: random.Random,
        stop: threading.Event | None = None,
        kept: KeptLease | None = None,
    ) -> list[GameCompleted]:
        """Play and append one batch; returns the games appended. With ``kept``, the batch
        is appended only while that slot's lease still holds (SlotLost otherwise)."""
        weights = curriculum_weights(self.views["curriculum"])
        config = choose_config(weights, self.settings.configs, rng)
        seed = rng.getrandbits(63)
        started = time.perf_counter()
        if self.child is not None:
            model, checkpoint = await self._checkpoint_for(config.name)
            search = self._search(config.name, model)
            records = await self.child.play(config, self.settings, search, seed, self.producer,
                                            model, checkpoint, self.inference_socket)  # fmt: skip
        else:
            model, network = await self._network_for(config.name)
            try:
                records = await asyncio.to_thread(
                    play_selfplay_batch,
                    config,
                    self.settings,
                    self._search(config.name, model),
                    seed=seed,
                    producer=self.producer,
                    network=network,
                    model=model,
                    stop=stop,
                )
            except InferenceUnavailable:
                self.loaded.pop(config.name, None)  # reconnect, or a network of its own, next
                raise
        self.seconds += time.perf_counter() - started
        await ensure_held(kept, f"selfplay worker {self.worker_id!r}")
        await self.store.append_many(records)
        self.batches += 1
        self.games += len(records)
        self.moves += sum(len(r.moves) for r in records)
        return records

    def _search(self, config: str, model: ModelRef | None) -> SearchSettings:
        bootstrap = model is None or model.artifact is None
        return selfplay_search(self.settings, self.views["feedback"], config, bootstrap=bootstrap)

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


def on_model_changed(event: Event, *, registry: Tables, worker: SelfplayWorker) -> None:
    """ModelPromoted / ModelRolledBack: the config's next batch plays the new best."""
    if isinstance(event, ModelPromoted | ModelRolledBack):
        worker.swap(event.config, registry)


async def run_worker(
    worker: SelfplayWorker,
    stop: asyncio.Event,
    *,
    seed: int | None = None,
    max_batches: int | None = None,
    tasks: TaskCoordinator | None = None,
) -> SelfplayWorker:
    """Play batches until ``stop`` is set (a batch in flight is abandoned, never half-appended),
    holding a selfplay slot of this host throughout when ``tasks`` is given."""
    rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8)))
    halt = threading.Event()
    watcher = asyncio.create_task(_relay(stop, halt, worker.child))
    session = _Session(worker, rng, halt, stop, max_batches)
    try:
        if tasks is None:
            await session.play(None)
        else:
            await _play_in_slots(session, tasks)
    finally:
        watcher.cancel()
        if worker.child is not None:
            await asyncio.to_thread(worker.child.close)
    return worker


def new_worker(
    store: EventStore, settings: LoopSettings, views: Mapping[str, Tables], state_dir: Path
) -> SelfplayWorker:
    """A worker with a child process for its games when ``selfplay.processes`` is 1."""
    child = ChildPlayer() if settings.selfplay.processes > 0 else None
    return SelfplayWorker(store, settings, views, checkpoint_cache(state_dir), child=child,
                          inference_socket=inference_socket(state_dir))  # fmt: skip


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
            except InferenceUnavailable as exc:  # the batch is lost; the next one goes on
                log.warning(
                    "selfplay_inference_lost", worker=self.worker.worker_id, reason=str(exc)
                )
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
