"""The event catalogue: every event type of the training loop, gathered for the codec and schema.

The events live by concept in ``events.games``, ``events.training``, ``events.evaluation``,
``events.ratings``, ``events.models``, ``events.curriculum``, ``events.feedback``,
``events.tasks`` and ``events.system``; this module names them all (``EVENT_TYPES`` is the
discriminated union the codec decodes) and re-exports every one.
"""

from __future__ import annotations

from events.config import ConfigName
from events.curriculum import CurriculumInput, CurriculumRebalanced
from events.envelope import Event, Part
from events.evaluation import (
    EvalGameRequested,
    EvaluationCompleted,
    EvaluationStarted,
    OpponentResult,
    SeatSpec,
)
from events.feedback import FeedbackSignalRaised
from events.games import GameCompleted, SeatAssignment
from events.models import (
    ArtifactRef,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    ModelRetired,
    ModelRolledBack,
)
from events.models import (
    _Decision as _Decision,  # the verdicts' base, importable from here as before
)
from events.ratings import EloUpdated, MatchCompleted, MatchParticipant, RatingChange
from events.system import (
    DaemonHeartbeat,
    DaemonStarted,
    DaemonStopped,
    HandlerFailed,
    HostOffline,
    HostOnline,
)
from events.tasks import TaskFinished, TaskRefused, TaskStarted
from events.training import (
    EpochLoss,
    GameRange,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
    TrainingStarted,
)

EVENT_TYPES: tuple[type[Event], ...] = (
    GameCompleted,
    TrainingRequested,
    TrainingStarted,
    TrainingCompleted,
    TrainingFailed,
    EvaluationStarted,
    EvaluationCompleted,
    EvalGameRequested,
    MatchCompleted,
    EloUpdated,
    ModelRegistered,
    ModelPromoted,
    ModelRejected,
    ModelRolledBack,
    ModelRetired,
    CurriculumRebalanced,
    FeedbackSignalRaised,
    TaskStarted,
    TaskFinished,
    TaskRefused,
    DaemonStarted,
    DaemonStopped,
    DaemonHeartbeat,
    HostOnline,
    HostOffline,
    HandlerFailed,
)

__all__ = [
    "ArtifactRef",
    "ConfigName",
    "CurriculumInput",
    "CurriculumRebalanced",
    "DaemonHeartbeat",
    "DaemonStarted",
    "DaemonStopped",
    "EVENT_TYPES",
    "EloUpdated",
    "EpochLoss",
    "EvalGameRequested",
    "EvaluationCompleted",
    "EvaluationStarted",
    "Event",
    "FeedbackSignalRaised",
    "GameCompleted",
    "GameRange",
    "HandlerFailed",
    "HostOffline",
    "HostOnline",
    "MatchCompleted",
    "MatchParticipant",
    "ModelPromoted",
    "ModelRegistered",
    "ModelRejected",
    "ModelRetired",
    "ModelRolledBack",
    "OpponentResult",
    "Part",
    "RatingChange",
    "SeatAssignment",
    "SeatSpec",
    "TaskFinished",
    "TaskRefused",
    "TaskStarted",
    "TrainingCompleted",
    "TrainingFailed",
    "TrainingRequested",
    "TrainingStarted",
]
