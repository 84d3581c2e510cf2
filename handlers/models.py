"""Models as the play stages use them: references read from the registry read model, and
checkpoints in the Object Store (events carry name, sha256 and size; the bytes never travel
in an event), cached on disk by sha256 and loaded with weights_only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from events import ArtifactRef
from events.streams import MODELS_BUCKET
from projections.eventstore import EventStore
from projections.registry import current_best, model_row
from projections.tables import Row, Tables

if TYPE_CHECKING:
    from engine.players.neural import NetworkEvaluator


@dataclass(frozen=True)
class ModelRef:
    """A registered model: where its weights are and which generation it is."""

    config: str
    model_id: str
    artifact: ArtifactRef | None
    generation: int = 0

    @classmethod
    def of(cls, row: Row) -> ModelRef:
        """The reference of a registry row (projections.registry)."""
        artifact = row.get("artifact")
        return cls(
            row["config"],
            row["model_id"],
            ArtifactRef.model_validate(artifact) if artifact else None,
            int(row.get("generation") or 0),
        )


def best_model(registry: Tables, config: str) -> ModelRef | None:
    """The config's current best as the registry has it (promotions, rollbacks and
    retirements folded in); None while it has none."""
    row = current_best(registry, config)
    return ModelRef.of(row) if row is not None else None


def registered_model(registry: Tables, model_id: str) -> ModelRef | None:
    """A model's registration (None if the registry never saw it)."""
    row = model_row(registry, model_id)
    return ModelRef.of(row) if row is not None else None


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
    from engine.network import load_checkpoint
    from engine.players.neural import NetworkEvaluator

    data = await fetch_checkpoint(store, model.artifact, cache_dir)
    network, _ = load_checkpoint(data)
    return NetworkEvaluator(network), model.artifact.sha256
