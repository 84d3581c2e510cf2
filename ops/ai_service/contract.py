"""The wire shapes of RingRift's AI-service contract (/ai/move, /ai/moves_batch) and the checks
that turn a request into a position to play, each failure a 4xx whose message quotes it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ops.ai_service.settings import (
    DEFAULT_DIFFICULTY,
    DIFFICULTY_BUDGETS,
    MAX_BATCH,
    MAX_DIFFICULTY,
    MIN_DIFFICULTY,
    Budget,
)

if TYPE_CHECKING:
    from engine.move import Move
    from engine.state import GameState

DIRECT_AI_TYPES = ("random", "heuristic")  # RingRift AIType values played without a search


class BadRequest(ValueError):
    """A request the service refuses; ``status`` is the HTTP code (400 or 422)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class MoveRequest(BaseModel):
    """RingRift's MoveRequest; the TS GameState travels as a JSON object (Maps as objects)."""

    model_config = ConfigDict(extra="ignore")

    game_state: dict[str, Any]
    player_number: int
    difficulty: int = Field(DEFAULT_DIFFICULTY, ge=MIN_DIFFICULTY, le=MAX_DIFFICULTY)
    ai_type: str | None = None
    seed: int | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    requests: list[MoveRequest] = Field(min_length=1, max_length=MAX_BATCH)


@dataclass(frozen=True)
class Position:
    """A checked request: the state to move in, its config and what the difficulty plays."""

    request: MoveRequest
    state: GameState
    config: str
    budget: Budget


def read_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"request body is not JSON: {exc}; body starts {body[:80]!r}") from None


def parse(model: type[BaseModel], data: Any) -> Any:
    """Validate against a wire model; the 422 names each bad field and quotes its value."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']} (got {_quote(e.get('input'))})"
            for e in exc.errors()
        )
        raise BadRequest(f"bad {model.__name__}: {problems}", status=422) from None


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def position(request: MoveRequest) -> Position:
    """The request's state, checked: readable, a known config, not over, the player's turn."""
    from engine.serialize import state_from_json

    board = request.game_state.get("board")
    board_type = (board.get("type") if isinstance(board, dict) else None) or request.game_state.get(
        "boardType"
    )
    try:
        state = state_from_json(request.game_state)
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise BadRequest(
            f"game_state is malformed (board type {board_type!r}): {type(exc).__name__} {exc}"
        ) from None
    config = state.config.name
    n = state.num_players
    if not 1 <= request.player_number <= n:
        raise BadRequest(
            f"player_number {request.player_number} is out of range 1..{n} for {config}"
        )
    if state.is_over:
        raise BadRequest(
            f"the game is over (gameStatus {request.game_state.get('gameStatus')!r}, "
            f"winner {state.winner!r}): there is no move to make"
        )
    if state.current_player != request.player_number:
        raise BadRequest(
            f"it is player {state.current_player}'s turn (currentPlayer), not player_number "
            f"{request.player_number}'s"
        )
    if not state.legal_moves():
        raise BadRequest(
            f"no legal move in phase {state.phase!r} for player {request.player_number}"
        )
    return Position(request, state, config, budget_of(request))


def budget_of(request: MoveRequest) -> Budget:
    """The difficulty's budget; ai_type random/heuristic asks for that baseline instead."""
    budget = DIFFICULTY_BUDGETS[request.difficulty]
    kind = (request.ai_type or "").lower()
    if kind in DIRECT_AI_TYPES:
        return Budget(request.difficulty, kind)
    return budget


def move_json(state: GameState, move: Move, thinking_ms: int) -> dict[str, Any]:
    """RingRift Move JSON for a legal move, with the fields its Move type carries."""
    from engine.serialize import move_to_json

    data = move_to_json(move, state.geometry)
    data.update(
        id=str(uuid.uuid4()),
        moveNumber=state.move_count + 1,
        timestamp=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        thinkTime=thinking_ms,
    )
    return data
