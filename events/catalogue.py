"""The event catalogue: every state change of the training loop, as frozen pydantic models."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.envelope import ConfigName, Event


class Part(BaseModel):
    """Base of nested payload parts: frozen and strict like events."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- games


class SeatAssignment(Part):
    seat: int = Field(ge=1, le=4)
    participant_id: str
    model_sha256: str | None = None


class GameCompleted(Event):
    """A finished game with its full record, on ``games.<board>.<n>p.<purpose>``.

    v2 adds ``root_values`` (the search's value of each searched position); v1 records
    read as v2 without them.
    """

    type: Literal["game.completed"] = "game.completed"
    version: Literal[2] = 2
    config: ConfigName
    purpose: Literal["selfplay", "eval", "import"]
    game_id: str
    seats: list[SeatAssignment]
    winner: int | None = None
    ranking: list[int] = Field(description="final rank per seat, 1 = best; ties share a rank")
    termination: str = Field(
        default="normal",
        description="how the game ended: a rule (ring_elimination, territory_control, "
        "last_player_standing, stalemate…) or, for a game stopped at the move cap, "
        "max_moves_heuristic (ranked by heuristic score) or max_moves_draw",
    )
    moves: list[str] = Field(description="moves in ringloop's compact notation")
    visits: list[dict[str, int]] | None = Field(
        default=None, description="per move, the search's visit count per candidate move"
    )
    root_values: list[list[float] | None] | None = Field(
        default=None,
        description="per move, the search root's mean value per player (index 0 = player 1, "
        "each in [-1, 1]) when the move was searched, else null",
    )
    model_id: str | None = None
    generation: int = 0
    seed: int | None = None
    duration_s: float = 0.0

    @model_validator(mode="after")
    def _root_values_fit(self) -> GameCompleted:
        if self.root_values is None:
            return self
        players = int(self.config.rsplit("_", 1)[1].removesuffix("p"))
        if len(self.root_values) != len(self.moves):
            raise ValueError(
                f"game {self.game_id!r}: {len(self.root_values)} root_values for "
                f"{len(self.moves)} moves"
            )
        for ply, values in enumerate(self.root_values):
            if values is not None and (
                len(values) != players or any(not -1.0 <= v <= 1.0 for v in values)
            ):
                raise ValueError(
                    f"game {self.game_id!r} move {ply}: root values {values!r} must be "
                    f"{players} numbers in [-1, 1]"
                )
        return self

    def subject(self) -> str:
        board, players = self.config.rsplit("_", 1)
        return f"games.{board}.{players}.{self.purpose}"


# ---------------------------------------------------------------- training


class GameRange(Part):
    """An exact, replayable slice of the games stream for one config."""

    stream: str = "RINGLOOP_GAMES"
    subject: str
    first_seq: int = Field(ge=1)
    last_seq: int = Field(ge=1)
    count: int = Field(ge=0)


class ArtifactRef(Part):
    """A blob in the Object Store: weights never travel inside events."""

    bucket: str = "ringloop-models"
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


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


# ---------------------------------------------------------------- evaluation and matches


class EvaluationStarted(Event):
    """A gate opened: its plan. v2 adds ``games``, the gating games published per opponent
    as EvalGameRequested work items (v1 gates were played inside one evaluator: none)."""

    type: Literal["evaluation.started"] = "evaluation.started"
    version: Literal[2] = 2
    domain: ClassVar[str] = "eval"
    subject_name: ClassVar[str] = "started"
    config: ConfigName
    evaluation_id: str
    candidate: str
    opponents: list[str]
    games: dict[str, int] = Field(
        default_factory=dict, description="opponent -> gating games published against it"
    )


class OpponentResult(Part):
    opponent: str
    games: int = Field(ge=0)
    wins: float = Field(ge=0, description="ranked-first finishes; ties split")
    losses: float = Field(ge=0)
    draws: float = Field(ge=0)
    score: float = Field(ge=0, le=1)
    wilson_low: float = 0.0
    wilson_high: float = 1.0
    sprt: Literal["accept", "reject", "continue"] | None = None
    llr: float | None = None


class EvaluationCompleted(Event):
    type: Literal["evaluation.completed"] = "evaluation.completed"
    version: Literal[1] = 1
    domain: ClassVar[str] = "eval"
    subject_name: ClassVar[str] = "completed"
    config: ConfigName
    evaluation_id: str
    candidate: str
    results: list[OpponentResult]
    decided_early: bool = False


class MatchParticipant(Part):
    participant_id: str
    rank: int = Field(ge=1, le=4)
    seat: int | None = Field(default=None, ge=1, le=4)
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    config: ConfigName | None = Field(
        default=None, description="the participant's own config when it is a model"
    )

    @property
    def key(self) -> str:
        """The rating key within a config: a model's content hash, else its id.

        Two names for one weights file are one participant.
        """
        return f"sha256:{self.model_sha256[:16]}" if self.model_sha256 else self.participant_id


class MatchCompleted(Event):
    """One rated result. v2 carries a rank per participant (v1 had a winner only)."""

    type: Literal["match.completed"] = "match.completed"
    version: Literal[2] = 2
    domain: ClassVar[str] = "match"
    subject_name: ClassVar[str] = "completed"
    config: ConfigName
    match_id: str
    participants: list[MatchParticipant] = Field(min_length=2, max_length=4)
    game_id: str | None = None
    game_subject: str | None = None
    context: str = Field(default="evaluation", description="evaluation, tournament or import")
    context_id: str | None = None

    @model_validator(mode="after")
    def _one_config(self) -> MatchCompleted:
        config = self.config
        keys = set()
        for participant in self.participants:
            if participant.config is not None and participant.config != config:
                mixed = [
                    p.participant_id for p in self.participants if p.config not in (None, config)
                ]
                raise ValueError(
                    f"match {self.match_id!r} mixes configs: {mixed} are not {config!r} models; "
                    "ratings are per config, so cross-config matches are refused"
                )
            keys.add(participant.key)
        if len(keys) != len(self.participants):
            listed = [p.key for p in self.participants]
            raise ValueError(f"match {self.match_id!r} lists a participant twice: {listed}")
        return self


class SeatSpec(Part):
    """Who plays a seat of a requested game: a registered model (with its artifact) or a tier."""

    participant_id: str
    kind: Literal["model", "tier"]
    artifact: ArtifactRef | None = None


class EvalGameRequested(Event):
    """A work item: play one rated game (of a tournament), taken by one of any number of
    evaluators from the work-queue stream RINGLOOP_WORK on ``work.eval.<config>``."""

    type: Literal["eval_game.requested"] = "eval_game.requested"
    version: Literal[2] = 2
    config: ConfigName
    context: Literal["tournament", "evaluation"] = Field(
        default="tournament",
        description="a tournament game, or a gating game (tournament_id is then the "
        "evaluation_id); v2 adds it, v1 items were tournament games",
    )
    tournament_id: str
    game_index: int = Field(ge=0)
    seats: list[SeatSpec] = Field(min_length=2, max_length=4)
    seed: int

    def subject(self) -> str:
        return f"work.eval.{self.config}"


# ---------------------------------------------------------------- ratings


class RatingChange(Part):
    participant_id: str
    before: float
    after: float
    rank: int = Field(ge=1, le=4)


class EloUpdated(Event):
    type: Literal["elo.updated"] = "elo.updated"
    version: Literal[1] = 1
    domain: ClassVar[str] = "elo"
    subject_name: ClassVar[str] = "updated"
    config: ConfigName
    match_id: str
    changes: list[RatingChange]
    k_factor: float


# ---------------------------------------------------------------- models


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


# ---------------------------------------------------------------- curriculum and feedback


class CurriculumInput(Part):
    elo_gap: float
    data_deficit: float
    recent_win_rate: float | None = None
    boost: float = 0.0


class CurriculumRebalanced(Event):
    type: Literal["curriculum.rebalanced"] = "curriculum.rebalanced"
    version: Literal[1] = 1
    domain: ClassVar[str] = "curriculum"
    subject_name: ClassVar[str] = "rebalanced"
    weights: dict[str, float]
    inputs: dict[str, CurriculumInput]
    min_weight: float
    max_weight: float


class FeedbackSignalRaised(Event):
    type: Literal["feedback.raised"] = "feedback.raised"
    version: Literal[1] = 1
    domain: ClassVar[str] = "feedback"
    subject_name: ClassVar[str] = "raised"
    config: ConfigName
    signal: Literal["plateau", "overfitting", "out_of_memory", "promotion_failures"]
    knob: str
    old_value: float
    new_value: float
    evidence: dict[str, float] = Field(default_factory=dict)


# ---------------------------------------------------------------- tasks and system


class TaskStarted(Event):
    type: Literal["task.started"] = "task.started"
    version: Literal[1] = 1
    domain: ClassVar[str] = "task"
    subject_name: ClassVar[str] = "started"
    task_id: str
    task_type: str
    lease_key: str
    holder: str
    fencing_token: int


class TaskFinished(Event):
    type: Literal["task.finished"] = "task.finished"
    version: Literal[1] = 1
    domain: ClassVar[str] = "task"
    subject_name: ClassVar[str] = "finished"
    task_id: str
    task_type: str
    outcome: Literal["succeeded", "failed", "cancelled", "expired"]


class TaskRefused(Event):
    type: Literal["task.refused"] = "task.refused"
    version: Literal[1] = 1
    domain: ClassVar[str] = "task"
    subject_name: ClassVar[str] = "refused"
    task_type: str
    reason: str
    holder: str | None = None


class DaemonStarted(Event):
    type: Literal["daemon.started"] = "daemon.started"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "daemon_started"
    daemon: str


class DaemonStopped(Event):
    type: Literal["daemon.stopped"] = "daemon.stopped"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "daemon_stopped"
    daemon: str
    reason: str = "shutdown"


class DaemonHeartbeat(Event):
    type: Literal["daemon.heartbeat"] = "daemon.heartbeat"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "heartbeat"
    daemon: str
    stats: dict[str, float] = Field(default_factory=dict)


class HostOnline(Event):
    type: Literal["host.online"] = "host.online"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "host_online"
    host: str
    cpus: int = 0
    gpus: list[str] = Field(default_factory=list)


class HostOffline(Event):
    type: Literal["host.offline"] = "host.offline"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "host_offline"
    host: str
    reason: str = "shutdown"


class HandlerFailed(Event):
    """A poison or exhausted input, dead-lettered on ``loop.dlq.<handler>``."""

    type: Literal["handler.failed"] = "handler.failed"
    version: Literal[1] = 1
    domain: ClassVar[str] = "dlq"
    handler: str
    error_type: str
    error: str
    input_stream: str
    input_seq: int
    input_subject: str
    input_event_id: str | None = None
    input_excerpt: str = Field(default="", description="the first 2 KiB of the raw input")
    deliveries: int = 1

    def subject(self) -> str:
        return f"loop.dlq.{self.handler}"


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
