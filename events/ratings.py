"""Rated results and their ratings: MatchCompleted (into the elo rater) and EloUpdated (out of it)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from events.config import ConfigName
from events.envelope import Event, Part
from events.keys import rating_key


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
        return rating_key(self.participant_id, self.model_sha256)


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
