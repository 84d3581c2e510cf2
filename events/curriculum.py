"""The curriculum's event: CurriculumRebalanced, the selfplay allocation weights per config and why."""

from __future__ import annotations

from typing import ClassVar, Literal

from events.envelope import Event, Part


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
