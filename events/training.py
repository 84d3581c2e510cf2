"""The trainer's events: TrainingRequested (from the data gate), then Started, Completed or Failed."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from events.config import ConfigName
from events.envelope import Event, Part
from events.models import ArtifactRef


class GameRange(Part):
    """An exact, replayable slice of the games stream for one config."""

    stream: str = "RINGLOOP_GAMES"
    subject: str
    first_seq: int = Field(ge=1)
    last_seq: int = Field(ge=1)
    count: int = Field(ge=0)


class EpochLoss(Part):
    epoch: int = Field(ge=1)
    policy_loss: float
    value_loss: float


class TrainingRequested(Event):
    type: Literal["training.requested"] = "training.requested"
    version: Literal[1] = 1
    domain: ClassVar[str] = "training"
    subject_name: ClassVar[str] = "requested"
    config: ConfigName
    training_id: str
    games: GameRange
    parent_model_id: str | None = None
    generation: int = 0


class TrainingStarted(Event):
    type: Literal["training.started"] = "training.started"
    version: Literal[1] = 1
    domain: ClassVar[str] = "training"
    subject_name: ClassVar[str] = "started"
    config: ConfigName
    training_id: str
    parent_model_id: str | None = None
    device: str = "cpu"


class TrainingCompleted(Event):
    type: Literal["training.completed"] = "training.completed"
    version: Literal[1] = 1
    domain: ClassVar[str] = "training"
    subject_name: ClassVar[str] = "completed"
    config: ConfigName
    training_id: str
    model_id: str
    artifact: ArtifactRef
    parent_model_id: str | None = None
    losses: list[EpochLoss]
    samples: int = Field(ge=0)
    samples_per_s: float = 0.0
    duration_s: float = 0.0
    data: GameRange
    generation: int = 0


class TrainingFailed(Event):
    type: Literal["training.failed"] = "training.failed"
    version: Literal[1] = 1
    domain: ClassVar[str] = "training"
    subject_name: ClassVar[str] = "failed"
    config: ConfigName
    training_id: str
    reason: str = Field(
        description="short code: oom, refused_random_init, refused_one_hot, no_samples, error"
    )
    error: str
