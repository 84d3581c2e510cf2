"""Folds ModelRegistered into the compat layer's read model: which config and weights each model has."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

from events import ModelRegistered
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Table, Tables

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


def file_sha256(path: str | None) -> str | None:
    """The sha256 hex digest of a weights file, or None when there is no such file."""
    if not path or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
