"""The gate's events: EvaluationStarted (its plan), EvalGameRequested work items (gating and
tournament games, to the evaluators), EvaluationCompleted (the decider's verdict, to the
promoter)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from events.config import ConfigName
from events.envelope import Event, Part
from events.models import ArtifactRef


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


class SeatSpec(Part):
    """Who plays a seat of a requested game: a registered model (with its artifact), a tier,
    or a service speaking RingRift's AI-service contract (its ``url``, e.g.
    ``http://host:8001/?difficulty=5``; added without a version bump: older items lack it)."""

    participant_id: str
    kind: Literal["model", "tier", "service"]
    artifact: ArtifactRef | None = None
    # Left out of the JSON when unset, so items without it encode as released v2 items do.
    url: str | None = Field(default=None, exclude_if=lambda value: value is None)


class EvalGameRequested(Event):
    """A work item: play one rated game (of a gate or a tournament), taken by one of any number
    of evaluators from the work-queue stream RINGLOOP_WORK on ``work.eval.<config>``."""

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
