"""Folds TrainingCompleted, EvaluationCompleted and model.* decisions into the model registry.

Per model: lineage (parent), state, artifact, training metrics, last evaluation and the
decision that settled it. Per config: the current best model, the one it replaced (for
a one-step rollback), the generation and the last sequence on ``loop.model.*.<config>``
(the promoter's optimistic-concurrency position).

States: candidate → best | rejected; best → superseded (a newer best) | rolled_back
(the regression watch) | retired; superseded → best again when a rollback restores it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from events import (
    EvaluationCompleted,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    ModelRetired,
    ModelRolledBack,
    TrainingCompleted,
    keys,
)
from events.catalogue import ArtifactRef
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Row, Table, Tables

MODELS = Table(
    "registry_models",
    {
        "model_id": str,
        "config": str,
        "state": str,
        "parent_model_id": str,
        "training_id": str,
        "generation": int,
        "artifact": dict,
        "losses": list,
        "samples": int,
        "data": dict,
        "registered_seq": int,
        "registered_at": str,
        "evaluation_id": str,
        "evaluation": dict,
        "decision": dict,
        "previous_best": str,
        "promoted_at": str,
    },
    ("model_id",),
)
CONFIGS = Table(
    "registry_configs",
    {
        "config": str,
        "best_model_id": str,
        "previous_best": str,
        "best_source": str,
        "best_since_seq": int,
        "promoted_at": str,
        "generation": int,
        "last_model_seq": int,
        "promotions": int,
        "rejections": int,
        "rollbacks": int,
        "evaluations": int,
    },
    ("config",),
)


class RegistryProjection(Projection):
    """The model registry read model; the promoter and the data gate decide from it."""

    name: ClassVar[str] = "registry"
    tables: ClassVar[tuple[Table, ...]] = (MODELS, CONFIGS)

    def accepts(self, subject: str) -> bool:
        return subject.startswith(("loop.model.", "loop.training.completed", "loop.eval.completed"))

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        match stored.event:
            case TrainingCompleted() as event:
                _register(state, stored, event.config, event.model_id, event.artifact,
                          parent=event.parent_model_id, training_id=event.training_id,
                          generation=event.generation,
                          metrics={"losses": [loss.model_dump() for loss in event.losses],
                                   "samples": event.samples, "data": event.data.model_dump()})  # fmt: skip
            case ModelRegistered() as event:
                _register(state, stored, event.config, event.model_id, event.artifact,
                          parent=event.parent_model_id, training_id=event.training_id,
                          generation=event.generation, metrics={})  # fmt: skip
            case EvaluationCompleted() as event:
                _evaluated(state, stored, event)
            case ModelPromoted() as event:
                _promoted(state, stored, event)
            case ModelRejected() as event:
                _decided(state, stored, event, "rejected", "rejected")
                _bump(state, event.config, "rejections")
            case ModelRolledBack() as event:
                _rolled_back(state, stored, event)
            case ModelRetired() as event:
                _retired(state, event)
        if stored.subject.startswith("loop.model."):
            config_row = _config(state, stored.subject.rsplit(".", 1)[-1])
            state.put(CONFIGS.name, {**config_row, "last_model_seq": stored.seq})
        return state


# ------------------------------------------------------------ reads


def current_best(state: Tables, config: str) -> Row | None:
    """The current best model's row for a config (None before the first promotion)."""
    row = state.get(CONFIGS.name, config)
    if row is None or row["best_model_id"] is None:
        return None
    return state.get(MODELS.name, row["best_model_id"])


def config_row(state: Tables, config: str) -> Row:
    """The config's registry row; a fresh one (nothing promoted, position 0) if unseen."""
    return state.get(CONFIGS.name, config) or _new_config(config)


def model_row(state: Tables, model_id: str) -> Row | None:
    return state.get(MODELS.name, model_id)


def rating_key(row: Row) -> str:
    """The model's participant key in the Elo read model (content hash when known)."""
    artifact = row.get("artifact") or {}
    return keys.rating_key(str(row["model_id"]), artifact.get("sha256"))


def lineage(state: Tables, model_id: str) -> list[str]:
    """The model and its ancestors, newest first."""
    chain: list[str] = []
    current: str | None = model_id
    while current is not None and current not in chain:
        chain.append(current)
        row = state.get(MODELS.name, current)
        current = row["parent_model_id"] if row else None
    return chain


# ------------------------------------------------------------ folding


def _new_config(config: str) -> Row:
    return {
        "config": config,
        "best_model_id": None,
        "previous_best": None,
        "best_source": None,
        "best_since_seq": None,
        "promoted_at": None,
        "generation": 0,
        "last_model_seq": 0,
        "promotions": 0,
        "rejections": 0,
        "rollbacks": 0,
        "evaluations": 0,
    }


def _config(state: Tables, config: str) -> Row:
    return state.get(CONFIGS.name, config) or _new_config(config)


def _bump(state: Tables, config: str, column: str) -> None:
    row = _config(state, config)
    state.put(CONFIGS.name, {**row, column: row[column] + 1})


def _new_model(config: str, model_id: str) -> Row:
    return {
        "model_id": model_id,
        "config": config,
        "state": "candidate",
        "parent_model_id": None,
        "training_id": None,
        "generation": 0,
        "artifact": None,
        "losses": [],
        "samples": None,
        "data": None,
        "registered_seq": None,
        "registered_at": None,
        "evaluation_id": None,
        "evaluation": None,
        "decision": None,
        "previous_best": None,
        "promoted_at": None,
    }


def _model(state: Tables, config: str, model_id: str) -> Row:
    return state.get(MODELS.name, model_id) or _new_model(config, model_id)


def _register(
    state: Tables,
    stored: StoredEvent,
    config: str,
    model_id: str,
    artifact: ArtifactRef | None,
    *,
    parent: str | None,
    training_id: str | None,
    generation: int,
    metrics: dict[str, Any],
) -> None:
    row = _model(state, config, model_id)
    update: Row = {
        "parent_model_id": row["parent_model_id"] or parent,
        "training_id": row["training_id"] or training_id,
        "generation": max(row["generation"], generation),
        "artifact": artifact.model_dump() if artifact is not None else row["artifact"],
        "registered_seq": row["registered_seq"] or stored.seq,
        "registered_at": row["registered_at"] or stored.time.isoformat(),
    }
    state.put(MODELS.name, {**row, **update, **metrics})


def _evaluated(state: Tables, stored: StoredEvent, event: EvaluationCompleted) -> None:
    row = _model(state, event.config, event.candidate)
    summary = {
        "seq": stored.seq,
        "decided_early": event.decided_early,
        "scores": {r.opponent: r.score for r in event.results},
        "games": sum(r.games for r in event.results),
    }
    state.put(MODELS.name, {**row, "evaluation_id": event.evaluation_id, "evaluation": summary})
    _bump(state, event.config, "evaluations")


def _decision(stored: StoredEvent, event: Any, kind: str) -> Row:
    return {
        "kind": kind,
        "gate": event.gate,
        "statistic": event.statistic,
        "threshold": event.threshold,
        "reason": event.reason,
        "evaluation_id": event.evaluation_id,
        "seq": stored.seq,
        "time": event.occurred_at.isoformat(),
    }


def _decided(state: Tables, stored: StoredEvent, event: Any, kind: str, new_state: str) -> Row:
    row = _model(state, event.config, event.model_id)
    row = {**row, "state": new_state, "decision": _decision(stored, event, kind)}
    state.put(MODELS.name, row)
    return row


def _set_state(state: Tables, model_id: str | None, new_state: str) -> None:
    row = state.get(MODELS.name, model_id) if model_id else None
    if row is not None:
        state.put(MODELS.name, {**row, "state": new_state})


def _promoted(state: Tables, stored: StoredEvent, event: ModelPromoted) -> None:
    config = _config(state, event.config)
    if config["best_model_id"] not in (None, event.model_id):
        _set_state(state, config["best_model_id"], "superseded")
    row = _decided(state, stored, event, "promoted", "best")
    promoted_at = event.occurred_at.isoformat()
    state.put(
        MODELS.name,
        {**row, "previous_best": event.previous_best, "promoted_at": promoted_at,
         "generation": max(row["generation"], event.generation)},
    )  # fmt: skip
    state.put(
        CONFIGS.name,
        {**config, "best_model_id": event.model_id, "previous_best": event.previous_best,
         "best_source": "promoted", "best_since_seq": stored.seq, "promoted_at": promoted_at,
         "generation": max(config["generation"], event.generation),
         "promotions": config["promotions"] + 1},
    )  # fmt: skip


def _rolled_back(state: Tables, stored: StoredEvent, event: ModelRolledBack) -> None:
    _decided(state, stored, event, "rolled_back", "rolled_back")
    _set_state(state, event.restored_model_id, "best")
    config = _config(state, event.config)
    state.put(
        CONFIGS.name,
        {**config, "best_model_id": event.restored_model_id, "previous_best": None,
         "best_source": "rollback", "best_since_seq": stored.seq,
         "rollbacks": config["rollbacks"] + 1},
    )  # fmt: skip


def _retired(state: Tables, event: ModelRetired) -> None:
    _set_state(state, event.model_id, "retired")
    config = _config(state, event.config)
    if config["best_model_id"] == event.model_id:
        state.put(CONFIGS.name, {**config, "best_model_id": None, "best_source": "retired"})
