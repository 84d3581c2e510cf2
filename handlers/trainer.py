"""Consumes TrainingRequested; trains from the named games; emits TrainingStarted, then TrainingCompleted with ModelRegistered (atomically) or TrainingFailed.

The training holds a "training" slot of the cluster (handlers.coordinator, limit
LoopSettings.tasks.training) for its whole run: a request refused a slot is nak'ed and
retried later, and a training whose lease was lost publishes nothing (redelivered).
The network is warm-started from the request's parent, else the config's best model; a
fresh random network is allowed only while the config has no best model (otherwise:
TrainingFailed reason ``refused_random_init``). Samples are the replayed positions of the
exact GameRange (the newest ``window_games`` of it), each searched move's visit
distribution as the policy target and the final ranks as per-seat value targets; decoded
samples are cached per game (stream sequence) in SQLite under the state folder. The
checkpoint goes to the Object Store; events carry its name, sha256 and size.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
import torch
from nats.js.errors import NotFoundError

from engine import GameConfig, GameState, Move
from engine.encoding import (
    encode_state,
    legal_policy_mask,
    move_to_index,
    network_spec,
    symmetry_augmenter,
    visits_to_policy,
)
from engine.network import build_network, load_checkpoint, save_checkpoint, select_device
from engine.players.neural import absolute_to_relative
from engine.training import OneHotTargetError, Sample, TrainingReport, policy_target, train
from events import (
    LOG_STREAM,
    EpochLoss,
    Event,
    GameCompleted,
    GameRange,
    ModelRegistered,
    Producer,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
    TrainingStarted,
    decode,
)
from handlers.coordinator import TaskCoordinator
from handlers.play_common import (
    ModelRef,
    PlaySettings,
    best_model,
    checkpoint_cache,
    ensure_held,
    fetch_checkpoint,
    put_checkpoint,
    registered_model,
    seat_values,
    task_slot,
    tuned,
)
from handlers.runtime import Append
from projections.eventstore import EventStore

NAME = "trainer"

log = structlog.get_logger(__name__)


class RefusedRandomInit(RuntimeError):
    """Training would start from random weights although the config has a model."""


# ---------------------------------------------------------------- samples from game records


def game_samples(record: GameCompleted, search_weight: float = 0.0) -> list[Sample]:
    """Replay a game record into training samples (legal moves are checked on the way).

    A searched move's target is its visit distribution; forced moves (one legal move) carry
    no information and are skipped; a game recorded without any search gives one-hot
    targets of the played moves (engine.training refuses one-hot where visits exist).
    The value target is the final result, blended with the search root's value where the
    record has one: ``(1 - search_weight) * result + search_weight * root value``.
    """
    if not 0.0 <= search_weight <= 1.0:
        raise ValueError(f"search_weight must lie in [0, 1], got {search_weight!r}")
    config = GameConfig.parse(record.config)
    state = GameState.initial(config)
    samples = []
    for ply, notation in enumerate(record.moves):
        move = Move.from_notation(notation)
        visits = record.visits[ply] if record.visits is not None else None
        if len(state.legal_moves()) > 1 and (visits or record.visits is None):
            root = record.root_values[ply] if record.root_values is not None else None
            value = seat_values(record.ranking, state.current_player)
            if root is not None and search_weight > 0:
                searched = absolute_to_relative(np.asarray(root), state.current_player)
                value = ((1 - search_weight) * value + search_weight * searched).astype(np.float32)
            samples.append(_sample(state, move, visits, value))
        state.apply(move)
    return samples


def _sample(
    state: GameState, move: Move, visits: dict[str, int] | None, value: np.ndarray
) -> Sample:
    planes = encode_state(state)
    mask = legal_policy_mask(state)
    if visits:
        counts = {Move.from_notation(m): float(c) for m, c in visits.items()}
        return Sample.from_search(planes, visits_to_policy(state, counts), value, mask)
    played = move_to_index(state, state.match_move(move))
    return Sample(planes, policy_target(played=played), value, mask)


class SampleCache:
    """Decoded samples per game, keyed by (stream, sequence, value blend), in one SQLite file.

    ``search_weight`` is the value-target blend the samples were built with (see
    game_samples): samples built with another blend are not reused.
    """

    def __init__(self, path: Path, search_weight: float = 0.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.search_weight = search_weight
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("drop table if exists samples")  # the cache before value blends
        self.db.execute(
            "create table if not exists game_samples (stream text, seq integer, "
            "search_weight real, generation integer, data blob, "
            "primary key (stream, seq, search_weight))"
        )

    def get(self, stream: str, seq: int) -> tuple[int, list[Sample]] | None:
        """(the game's model generation, its samples), if cached."""
        row = self.db.execute(
            "select generation, data from game_samples "
            "where stream = ? and seq = ? and search_weight = ?",
            (stream, seq, self.search_weight),
        ).fetchone()
        return (int(row[0]), unpack_samples(row[1])) if row is not None else None

    def put(self, stream: str, seq: int, generation: int, samples: list[Sample]) -> None:
        with self.db:
            self.db.execute(
                "insert or replace into game_samples values (?, ?, ?, ?, ?)",
                (stream, seq, self.search_weight, generation, pack_samples(samples)),
            )

    def close(self) -> None:
        self.db.close()


def pack_samples(samples: list[Sample]) -> bytes:
    buffer = io.BytesIO()
    if not samples:
        np.savez_compressed(buffer, empty=np.zeros(0))
        return buffer.getvalue()
    np.savez_compressed(
        buffer,
        planes=np.stack([s.planes for s in samples]),
        value=np.stack([s.value for s in samples]),
        index=np.concatenate([s.policy[0] for s in samples]),
        weight=np.concatenate([s.policy[1] for s in samples]),
        offsets=np.cumsum([0] + [len(s.policy[0]) for s in samples]),
        mask=np.packbits(np.stack([s.legal_mask for s in samples]), axis=1),  # type: ignore[misc]
        mask_size=np.array([len(samples[0].legal_mask)]),  # type: ignore[arg-type]
    )
    return buffer.getvalue()


def unpack_samples(data: bytes) -> list[Sample]:
    """Samples back from `pack_samples`. Each array is read from the archive once: indexing
    the NpzFile per sample would decompress the whole array again for every sample and
    leave each sample holding its own full copy (quadratic time and memory)."""
    with np.load(io.BytesIO(data)) as archive:
        if "empty" in archive:
            return []
        arrays = {name: archive[name] for name in archive.files}
    offsets, size = arrays["offsets"], int(arrays["mask_size"][0])
    planes, values, index, weight = (
        arrays["planes"],
        arrays["value"],
        arrays["index"],
        arrays["weight"],
    )
    masks = np.unpackbits(arrays["mask"], axis=1, count=size).astype(bool)
    return [
        Sample(
            planes[i],
            (index[offsets[i] : offsets[i + 1]], weight[offsets[i] : offsets[i + 1]]),
            values[i],
            masks[i],
        )
        for i in range(len(offsets) - 1)
    ]


async def load_samples(
    store: EventStore, games: GameRange, window: int, min_generation: int, cache: SampleCache
) -> tuple[list[Sample], int]:
    """Samples of the newest ``window`` games of the range (cached per game), leaving out
    games played by models older than ``min_generation``; returns them and the games used."""
    records = []
    async for chunk in store.read_raw(
        games.stream, games.subject, start_seq=games.first_seq, end_seq=games.last_seq
    ):
        records.extend(chunk)
    samples: list[Sample] = []
    used = 0
    for record in records[-window:]:
        cached = await asyncio.to_thread(cache.get, record.stream, record.seq)
        if cached is None:
            event = decode(record.data)
            if not isinstance(event, GameCompleted):
                continue
            samples_of = await asyncio.to_thread(game_samples, event, cache.search_weight)
            cached = (event.generation, samples_of)
            await asyncio.to_thread(cache.put, record.stream, record.seq, *cached)
        if cached[0] >= min_generation:
            samples.extend(cached[1])
            used += 1
    return samples, used


# ---------------------------------------------------------------- fitting (pure, CPU-heavy)


@dataclass(frozen=True)
class Fitted:
    checkpoint: bytes
    sha256: str
    report: TrainingReport


def fit(
    config: GameConfig,
    settings: PlaySettings,
    samples: Sequence[Sample],
    *,
    init: bytes | None,
    seed: int,
) -> Fitted:
    """Train a network (warm-started from ``init`` when given) and serialise it."""
    device = select_device()
    if init is not None:
        model, spec = load_checkpoint(init, device=device)
    else:
        blocks, channels = settings.network_size(config)
        spec = network_spec(config, blocks=blocks, channels=channels)
        torch.manual_seed(seed)
        model = build_network(spec)
    report = train(
        model,
        samples,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
        amp=settings.amp,
        device=device,
        seed=seed,
        augment=symmetry_augmenter(config) if settings.augment else None,
    )
    buffer = io.BytesIO()
    sha = save_checkpoint(model.cpu(), spec, buffer)
    return Fitted(buffer.getvalue(), sha, report)


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


# ---------------------------------------------------------------- the handler


@dataclass(frozen=True)
class TrainerDeps:
    store: EventStore
    settings: PlaySettings
    state_dir: Path
    producer: Producer
    tasks: TaskCoordinator | None = None  # the cluster's training limit (None: unbounded)


def model_id_for(request: TrainingRequested, generation: int) -> str:
    digest = hashlib.sha256(request.training_id.encode()).hexdigest()[:10]
    return f"{request.config}-g{generation}-{digest}"


async def on_training_requested(event: Event, deps: TrainerDeps) -> Append | list[Event] | None:
    """Train once per TrainingRequested (a redelivery after completion does nothing), holding
    a training slot; refused (SlotBusy) or lost (SlotLost), the request is retried later."""
    if not isinstance(event, TrainingRequested):
        return None
    if await _already_finished(deps.store, event):
        return None
    async with task_slot(deps.tasks, "training", event.training_id) as kept:
        result = await _attempt(event, deps)
        await ensure_held(kept, f"training {event.training_id!r}")
    return result


async def _attempt(event: TrainingRequested, deps: TrainerDeps) -> Append | list[Event]:
    """TrainingStarted, then the training's outcome: completed, or failed for a decided reason."""
    parent = await _parent(deps.store, event)
    await deps.store.append(
        event.caused(
            TrainingStarted,
            "started",
            producer=deps.producer,
            config=event.config,
            training_id=event.training_id,
            parent_model_id=parent.model_id if parent else None,
            device=str(select_device()),
        )
    )
    try:
        return await _train(event, parent, deps)
    except RefusedRandomInit as exc:
        return [_failed(event, deps, "refused_random_init", str(exc))]
    except OneHotTargetError as exc:
        return [_failed(event, deps, "refused_one_hot", str(exc))]
    except ValueError as exc:  # poison data (an illegal move in a record): a decided failure
        return [_failed(event, deps, "error", f"{type(exc).__name__}: {exc}")]
    except Exception as exc:
        if is_out_of_memory(exc):
            return [_failed(event, deps, "oom", repr(exc))]
        raise


async def _train(
    event: TrainingRequested, parent: ModelRef | None, deps: TrainerDeps
) -> Append | list[Event]:
    config = GameConfig.parse(event.config)
    init = await _initial_weights(deps, event, parent)
    generation = event.generation or ((parent.generation if parent else 0) + 1)
    min_generation = generation - deps.settings.window_generations
    cache = SampleCache(deps.state_dir / "cache" / "samples.db", deps.settings.value_search_weight)
    try:
        samples, used = await load_samples(
            deps.store, event.games, deps.settings.window_games, min_generation, cache
        )
    finally:
        cache.close()
    if not samples:
        return [_failed(event, deps, "no_samples", f"no positions in {event.games!r}")]
    seed = int(hashlib.sha256(event.training_id.encode()).hexdigest()[:8], 16)
    started = time.perf_counter()
    settings = await tuned(deps.store, event.config, deps.settings)  # e.g. batch size after OOM
    fitted = await asyncio.to_thread(fit, config, settings, samples, init=init, seed=seed)
    model_id = model_id_for(event, generation)
    artifact = await put_checkpoint(deps.store, f"{event.config}/{model_id}.pt", fitted.checkpoint)
    report = fitted.report
    completed = event.caused(
        TrainingCompleted,
        "completed",
        producer=deps.producer,
        config=event.config,
        training_id=event.training_id,
        model_id=model_id,
        artifact=artifact,
        parent_model_id=parent.model_id if parent else None,
        losses=[
            EpochLoss(epoch=i, policy_loss=e.policy, value_loss=e.value)
            for i, e in enumerate(report.epochs, 1)
        ],
        samples=len(samples),
        samples_per_s=round(report.samples_per_second, 2),
        duration_s=round(time.perf_counter() - started, 3),
        data=event.games,
        generation=generation,
    )
    registered = event.caused(
        ModelRegistered,
        "registered",
        producer=deps.producer,
        config=event.config,
        model_id=model_id,
        artifact=artifact,
        parent_model_id=parent.model_id if parent else None,
        training_id=event.training_id,
        generation=generation,
        metadata={"games": used, "device": report.device, "amp": report.amp},
    )
    log.info("training_completed", config=event.config, model_id=model_id, samples=len(samples))
    return Append([completed, registered])


async def _parent(store: EventStore, event: TrainingRequested) -> ModelRef | None:
    """The model to warm-start from: the request's parent, else the config's best."""
    if event.parent_model_id is not None:
        found = await registered_model(store, event.config, event.parent_model_id)
        return found or ModelRef(event.config, event.parent_model_id, None)
    return await best_model(store, event.config)


async def _initial_weights(
    deps: TrainerDeps, event: TrainingRequested, parent: ModelRef | None
) -> bytes | None:
    if parent is None:
        return None  # the config has no model yet: the one case random weights are allowed
    if parent.artifact is None:
        raise RefusedRandomInit(
            f"{event.config} has model {parent.model_id!r} but no weights are registered for "
            "it; refusing to train from random weights"
        )
    try:
        return await fetch_checkpoint(deps.store, parent.artifact, checkpoint_cache(deps.state_dir))
    except (NotFoundError, ValueError) as exc:  # missing object, wrong sha: never random
        raise RefusedRandomInit(
            f"cannot load {parent.model_id!r} ({parent.artifact.name}): {exc!r}; "
            "refusing to train from random weights"
        ) from exc


def _failed(event: TrainingRequested, deps: TrainerDeps, reason: str, error: str) -> TrainingFailed:
    log.warning("training_failed", config=event.config, reason=reason, error=error[:300])
    return event.caused(
        TrainingFailed,
        "failed",
        producer=deps.producer,
        config=event.config,
        training_id=event.training_id,
        reason=reason,
        error=error[:4000],
    )


async def _already_finished(store: EventStore, event: TrainingRequested) -> bool:
    for outcome in ("completed", "failed"):
        async for stored in store.read(LOG_STREAM, f"loop.training.{outcome}.{event.config}"):
            if getattr(stored.event, "training_id", None) == event.training_id:
                return True
    return False


__all__ = [
    "NAME",
    "SampleCache",
    "TrainerDeps",
    "fit",
    "game_samples",
    "on_training_requested",
]
