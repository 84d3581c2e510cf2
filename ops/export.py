"""Exports out of the loop: a model's checkpoint with a JSON sidecar (lineage, sha256), and a
config's games as RingRift game records (JSON Lines) that `ringloop verify-record` reads back.

Reads go through the registry read model and the games stream; nothing is appended.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from events import GAMES_STREAM, GameCompleted
from events.streams import games_subject
from handlers.models import best_model, checkpoint_cache, fetch_checkpoint, registered_model
from projections.registry import lineage, model_row
from projections.tables import Tables

if TYPE_CHECKING:
    from ops.app import App

SIDECAR_FORMAT = "ringloop-model-export/1"


class ExportError(ValueError):
    """An export that cannot be made; the message names what is missing."""


@dataclass(frozen=True)
class ModelExport:
    model_id: str
    checkpoint: Path
    sidecar: Path
    sha256: str
    size: int


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


async def export_model(app: App, name: str, config: str, out: Path) -> ModelExport:
    """Write the checkpoint of ``name`` (a model id, or ``best``) and its sidecar beside it."""
    app.start_views(["registry"], ":memory:")
    await app.refresh("registry")
    registry = app.runners["registry"].state
    model = best_model(registry, config) if name == "best" else registered_model(registry, name)
    if model is None:
        what = f"{config} has no current best model" if name == "best" else f"no model {name!r}"
        raise ExportError(f"{what} in the registry")
    if model.config != config:
        raise ExportError(f"model {name!r} is a {model.config} model, not {config}")
    if model.artifact is None:
        raise ExportError(f"model {model.model_id!r} has no checkpoint in the registry")
    data = await fetch_checkpoint(
        app.store, model.artifact, checkpoint_cache(app.settings.state_dir)
    )
    sha = hashlib.sha256(data).hexdigest()
    _write(out, data)
    sidecar = sidecar_path(out)
    _write(sidecar, (json.dumps(describe(registry, model.model_id, sha, len(data)), indent=2,
                                default=str) + "\n").encode())  # fmt: skip
    return ModelExport(model.model_id, out, sidecar, sha, len(data))


def describe(registry: Tables, model_id: str, sha: str, size: int) -> dict[str, Any]:
    """The sidecar: what the file is, its digest, and where the model came from."""
    row = model_row(registry, model_id) or {}
    keep = ("config", "state", "generation", "parent_model_id", "training_id", "samples",
            "losses", "data", "registered_at", "evaluation_id", "evaluation", "decision",
            "promoted_at")  # fmt: skip
    return {
        "format": SIDECAR_FORMAT,
        "model_id": model_id,
        "sha256": sha,
        "size": size,
        "checkpoint_format": "ringloop PolicyValueNet (torch.load(..., weights_only=True))",
        "lineage": lineage(registry, model_id),
        "artifact": row.get("artifact"),
        **{key: row.get(key) for key in keep},
        "exported_at": datetime.now(UTC).isoformat(),
    }


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


async def export_games(
    app: App,
    config: str,
    out: Path,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    purpose: str = "*",
) -> int:
    """Write the config's stored games (appended between ``start`` and ``end``) as RingRift
    game records, one JSON object a line; returns how many."""
    subject = games_subject(config, purpose)
    last = await app.store.last_seq(GAMES_STREAM, subject)
    if start is not None and last and (await app.store.get(GAMES_STREAM, last)).time < start:
        last = 0  # nothing stored since `start` (a read from then on would wait for more)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with temporary.open("w") as handle:
        if last:
            async for stored in app.store.read(
                GAMES_STREAM, subject, start_time=start, end_time=end
            ):
                if isinstance(stored.event, GameCompleted):
                    handle.write(json.dumps(game_record(stored.event, stored.time)) + "\n")
                    count += 1
    temporary.replace(out)
    return count


def game_record(game: GameCompleted, stored_at: datetime) -> dict[str, Any]:
    """A RingRift game record of a stored game (moves replayed through the engine)."""
    from engine import GameConfig
    from engine.record import to_record

    record = to_record(GameConfig.parse(game.config), list(_moves(game)))
    seats = {s.seat: s for s in game.seats}
    record["players"] = [
        {"playerNumber": p, "type": "ai", "participantId": seats[p].participant_id,
         "modelSha256": seats[p].model_sha256} if p in seats else {"playerNumber": p}
        for p in range(1, len(record["players"]) + 1)
    ]  # fmt: skip
    record.update(
        gameId=game.game_id,
        purpose=game.purpose,
        termination=game.termination,
        ranking=game.ranking,
        modelId=game.model_id,
        seed=game.seed,
        recordedAt=stored_at.isoformat(),
    )
    return record


def _moves(game: GameCompleted) -> Iterator[Any]:
    from engine.move import Move

    for text in game.moves:
        yield Move.from_notation(text)
