"""The feedback loop's event: FeedbackSignalRaised, a knob changed in reaction to a signal."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from events.config import ConfigName
from events.envelope import Event


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
