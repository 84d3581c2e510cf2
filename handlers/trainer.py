"""Consumes TrainingRequested; trains from the named games; emits TrainingStarted, then TrainingCompleted with ModelRegistered (atomically) or TrainingFailed.

The training holds a "training" slot of the cluster (handlers.coordinator, limit
LoopSettings.tasks.training) for its whole run: a request refused a slot is nak'ed and
retried later, and a training whose lease was lost publishes nothing (redelivered).
The network is warm-started from the request's parent, else the config's best model; a
fresh random network is allowed only while the config has no best model (otherwise:
TrainingFailed reason ``refused_random_init``). Samples are the replayed positions of the
exact GameRange (the newest ``window_games`` of it; at most ``max_samples`` of their
positions, drawn uniformly), each searched move's visit
distribution as the policy target and the final ranks as per-seat value targets; decoded
samples are cached per game (stream sequence) in SQLite under the state folder. The
checkpoint goes to the Object Store; events carry its name, sha256 and size.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
import torch
from nats.js.errors import NotFoundError

from engine import GameConfig
from engine.encoding import network_spec
from engine.network import build_network, load_checkpoint, save_checkpoint, select_device
from engine.symmetry import symmetry_augmenter
from engine.training import OneHotTargetError, Sample, TrainingReport, train
from events import (
    EpochLoss,
    Event,
    ModelRegistered,
    Producer,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
    TrainingStarted,
)
from handlers.coordinator import TaskCoordinator
from handlers.feedback import knobs
from handlers.models import (
    ModelRef,
    best_model,
    checkpoint_cache,
    fetch_checkpoint,
    put_checkpoint,
    registered_model,
)
from handlers.runtime import Append, Consumer
from handlers.samples import SampleCache, game_samples, load_samples
from handlers.settings import LoopSettings, TrainingSettings
from handlers.slots import ensure_held, task_slot
from projections.eventstore import EventStore
from projections.pipeline import status
from projections.tables import Tables

NAME = "trainer"


def consumer(settings: LoopSettings) -> Consumer:
    """One training at a time per process; a request waits in place for the training slot."""
    tasks = settings.tasks
    return Consumer(batch=1, ack_wait=tasks.ack_wait_s, max_deliver=10,
                    nak_delays=tasks.slot_retry_delays_s, wait_in_place=True)  # fmt: skip


log = structlog.get_logger(__name__)


class RefusedRandomInit(RuntimeError):
    """Training would start from random weights although the config has a model."""


# ---------------------------------------------------------------- fitting (pure, CPU-heavy)


@dataclass(frozen=True)
class Fitted:
    checkpoint: bytes
    sha256: str
    report: TrainingReport


def fit(
    config: GameConfig,
    settings: TrainingSettings,
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
        size = settings.network(config.name)
        spec = network_spec(config, blocks=size.blocks, channels=size.channels)
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


def drawn(samples: Sequence[Sample], most: int | None, seed: int) -> Sequence[Sample]:
    """The positions a training fits on: all of them, or `most` drawn uniformly without
    replacement (the same draw for the same seed, so a replayed training fits the same)."""
    if most is None or len(samples) <= most:
        return samples
    return random.Random(seed).sample(list(samples), most)


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


# ---------------------------------------------------------------- the handler


def fit_settings(loop: LoopSettings, feedback: Tables, config: str) -> TrainingSettings:
    """The one way trainer settings are built: LoopSettings.training with the knobs feedback
    moved for this config (the batch size after an out-of-memory)."""
    batch_size = max(1, knobs(feedback, config, loop).batch_size)
    return loop.training.model_copy(update={"batch_size": batch_size})


@dataclass(frozen=True)
class Workspace:
    """Where a trainer keeps its files and takes its slot: the bus, the state folder, and
    the cluster's training limit (None: unbounded)."""

    store: EventStore
    state_dir: Path
    tasks: TaskCoordinator | None = None


def model_id_for(request: TrainingRequested, generation: int) -> str:
    digest = hashlib.sha256(request.training_id.encode()).hexdigest()[:10]
    return f"{request.config}-g{generation}-{digest}"


async def on_training_requested(
    event: Event,
    *,
    registry: Tables,
    pipeline: Tables,
    feedback: Tables,
    workspace: Workspace,
    settings: LoopSettings,
    producer: Producer,
) -> Append | None:
    """Train once per TrainingRequested (a redelivery after its end does nothing), holding a
    training slot; refused (SlotBusy) or lost (SlotLost), the request is retried later.

    Returns TrainingStarted (stamped when the training began) with the outcome: the
    TrainingCompleted and its ModelRegistered, or a TrainingFailed — appended together."""
    if not isinstance(event, TrainingRequested) or _finished(registry, pipeline, event):
        return None
    async with task_slot(workspace.tasks, "training", event.training_id) as kept:
        parent = _parent(registry, event)
        started = event.caused(
            TrainingStarted,
            "started",
            producer=producer,
            config=event.config,
            training_id=event.training_id,
            parent_model_id=parent.model_id if parent else None,
            device=str(select_device()),
        )
        training = _Training(
            event, parent, workspace, fit_settings(settings, feedback, event.config), producer
        )
        outcome = await training.outcome()
        await ensure_held(kept, f"training {event.training_id!r}")
    return Append([started, *outcome])


@dataclass(frozen=True)
class _Training:
    request: TrainingRequested
    parent: ModelRef | None
    workspace: Workspace
    settings: TrainingSettings
    producer: Producer

    async def outcome(self) -> list[Event]:
        """The training's outcome: completed and registered, or failed for a decided reason."""
        try:
            return await self._train()
        except RefusedRandomInit as exc:
            return [self._failed("refused_random_init", str(exc))]
        except OneHotTargetError as exc:
            return [self._failed("refused_one_hot", str(exc))]
        except ValueError as exc:  # poison data (an illegal move in a record): a decided failure
            return [self._failed("error", f"{type(exc).__name__}: {exc}")]
        except Exception as exc:
            if is_out_of_memory(exc):
                return [self._failed("oom", repr(exc))]
            raise

    async def _train(self) -> list[Event]:
        event, parent, settings = self.request, self.parent, self.settings
        config = GameConfig.parse(event.config)
        init = await self._initial_weights()
        generation = event.generation or ((parent.generation if parent else 0) + 1)
        cache = SampleCache(
            self.workspace.state_dir / "cache" / "samples.db", settings.value_search_weight
        )
        try:
            samples, used = await load_samples(self.workspace.store, event.games, cache)
        finally:
            cache.close()
        if not samples:
            return [self._failed("no_samples", f"no positions in {event.games!r}")]
        seed = int(hashlib.sha256(event.training_id.encode()).hexdigest()[:8], 16)
        fitted_on = drawn(samples, settings.max_samples, seed)
        started = time.perf_counter()
        fitted = await asyncio.to_thread(fit, config, settings, fitted_on, init=init, seed=seed)
        model_id = model_id_for(event, generation)
        artifact = await put_checkpoint(
            self.workspace.store, f"{event.config}/{model_id}.pt", fitted.checkpoint
        )
        report = fitted.report
        lineage = dict(config=event.config, model_id=model_id, artifact=artifact,
                       parent_model_id=parent.model_id if parent else None,
                       training_id=event.training_id, generation=generation)  # fmt: skip
        completed = event.caused(
            TrainingCompleted,
            "completed",
            producer=self.producer,
            losses=[
                EpochLoss(epoch=i, policy_loss=e.policy, value_loss=e.value)
                for i, e in enumerate(report.epochs, 1)
            ],
            samples=len(fitted_on),
            samples_per_s=round(report.samples_per_second, 2),
            duration_s=round(time.perf_counter() - started, 3),
            data=event.games,
            **lineage,
        )
        registered = event.caused(
            ModelRegistered,
            "registered",
            producer=self.producer,
            metadata={"games": used, "device": report.device, "amp": report.amp},
            **lineage,
        )
        log.info("training_completed", config=event.config, model_id=model_id,
                 samples=len(fitted_on), window=len(samples))  # fmt: skip
        return [completed, registered]

    async def _initial_weights(self) -> bytes | None:
        parent, event = self.parent, self.request
        if parent is None:
            return None  # the config has no model yet: the one case random weights are allowed
        if parent.artifact is None:
            raise RefusedRandomInit(
                f"{event.config} has model {parent.model_id!r} but no weights are registered "
                "for it; refusing to train from random weights"
            )
        cache = checkpoint_cache(self.workspace.state_dir)
        try:
            return await fetch_checkpoint(self.workspace.store, parent.artifact, cache)
        except (NotFoundError, ValueError) as exc:  # missing object, wrong sha: never random
            raise RefusedRandomInit(
                f"cannot load {parent.model_id!r} ({parent.artifact.name}): {exc!r}; "
                "refusing to train from random weights"
            ) from exc

    def _failed(self, reason: str, error: str) -> TrainingFailed:
        event = self.request
        log.warning("training_failed", config=event.config, reason=reason, error=error[:300])
        return event.caused(
            TrainingFailed,
            "failed",
            producer=self.producer,
            config=event.config,
            training_id=event.training_id,
            reason=reason,
            error=error[:4000],
        )


def _parent(registry: Tables, event: TrainingRequested) -> ModelRef | None:
    """The model to warm-start from: the request's parent, else the config's best."""
    if event.parent_model_id is not None:
        found = registered_model(registry, event.parent_model_id)
        return found or ModelRef(event.config, event.parent_model_id, None)
    return best_model(registry, event.config)


def _finished(registry: Tables, pipeline: Tables, event: TrainingRequested) -> bool:
    """The request already ended: its model is registered, or it is the config's last
    training and that one completed or failed."""
    if any(row["training_id"] == event.training_id for row in registry.rows("registry_models")):
        return True
    row = status(pipeline, event.config)
    return row["last_training_id"] == event.training_id and row["last_training_state"] in (
        "completed",
        "failed",
    )


__all__ = [
    "NAME",
    "SampleCache",
    "Workspace",
    "fit",
    "fit_settings",
    "game_samples",
    "on_training_requested",
]
