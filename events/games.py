"""The games stream's one event: GameCompleted, a finished game with its record (selfplay, eval, import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from events.config import ConfigName, split_config
from events.envelope import Event, Part
from events.streams import games_subject


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
        _, players = split_config(self.config)
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
        return games_subject(self.config, self.purpose)
