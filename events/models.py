"""The model registry's events: registration, promotion verdicts, rollback, retirement, and artifact refs."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from events.config import ConfigName
from events.envelope import Event, Part


class ArtifactRef(Part):
    """A blob in the Object Store: weights never travel inside events."""

    bucket: str = "ringloop-models"
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class ModelRegistered(Event):
    type: Literal["model.registered"] = "model.registered"
    version: Literal[1] = 1
    domain: ClassVar[str] = "model"
    subject_name: ClassVar[str] = "registered"
    config: ConfigName
    model_id: str
    artifact: ArtifactRef | None = None
    parent_model_id: str | None = None
    training_id: str | None = None
    generation: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)


class _Decision(Event):
    config: ConfigName
    model_id: str
    gate: str
    statistic: float
    threshold: float
    reason: str
    evaluation_id: str | None = None


class ModelPromoted(_Decision):
    type: Literal["model.promoted"] = "model.promoted"
    version: Literal[1] = 1
    domain: ClassVar[str] = "model"
    subject_name: ClassVar[str] = "promoted"
    previous_best: str | None = None
    generation: int = 0


class ModelRejected(_Decision):
    type: Literal["model.rejected"] = "model.rejected"
    version: Literal[1] = 1
    domain: ClassVar[str] = "model"
    subject_name: ClassVar[str] = "rejected"


class ModelRolledBack(_Decision):
    type: Literal["model.rolled_back"] = "model.rolled_back"
    version: Literal[1] = 1
    domain: ClassVar[str] = "model"
    subject_name: ClassVar[str] = "rolled_back"
    restored_model_id: str


class ModelRetired(Event):
    type: Literal["model.retired"] = "model.retired"
    version: Literal[1] = 1
    domain: ClassVar[str] = "model"
    subject_name: ClassVar[str] = "retired"
    config: ConfigName
    model_id: str
    reason: str
