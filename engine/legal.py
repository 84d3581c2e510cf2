"""Legal moves per phase: the generators GameState.legal_moves dispatches to (R074-R076)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine import movegen as mg
from engine.lines import line_moves
from engine.move import (
    CHOOSE_TERRITORY_OPTION,
    CONTINUE_CAPTURE,
    ELIMINATE_RINGS,
    FORCED_ELIMINATION,
    NO_LINE_ACTION,
    NO_MOVEMENT_ACTION,
    NO_PLACEMENT_ACTION,
    NO_TERRITORY_ACTION,
    SKIP_CAPTURE,
    SKIP_PLACEMENT,
    SKIP_RECOVERY,
    SKIP_TERRITORY,
    SWAP_SIDES,
    Move,
)
from engine.phases import (
    CAPTURE,
    CHAIN_CAPTURE,
    FORCED_ELIMINATION_PHASE,
    GAME_OVER,
    LINE_PROCESSING,
    MOVEMENT,
    RING_PLACEMENT,
    TERRITORY_PROCESSING,
)
from engine.territory import find_regions

if TYPE_CHECKING:
    from engine.state import GameState


def _gen_placement(s: GameState, P: int) -> list[Move]:
    moves = mg.placements(s, P) if s._hand[P] > 0 else []
    if s._hand[P] > 0 and _can_skip_placement(s, P):
        moves.append(Move(SKIP_PLACEMENT, P))
    if not moves:
        moves.append(Move(NO_PLACEMENT_ACTION, P))
    if s.swap_offered and P == 2:
        moves.append(Move(SWAP_SIDES, P))
    return moves


def _can_skip_placement(s: GameState, P: int) -> bool:
    for c in mg.controlled_cells(s, P):
        if mg.stack_has_action(s, c):
            return True
    return mg.recovery_eligible(s, P)


def _gen_movement(s: GameState, P: int) -> list[Move]:
    moves = mg.movement_moves(s, P)
    if not moves and s.must_move < 0 and mg.recovery_eligible(s, P):
        moves = mg.recovery_moves(s, P)
        moves.append(Move(SKIP_RECOVERY, P))
    if not moves:
        moves.append(Move(NO_MOVEMENT_ACTION, P))
    if s.swap_offered and P == 2:
        # Only reachable from imported states: in play P2's placement-phase move clears it.
        moves.append(Move(SWAP_SIDES, P))
    return moves


def _chain_origins(s: GameState, P: int) -> list[int]:
    # Imported legacy states may lack chainCapturePosition: then any controlled stack.
    return [s.chain_pos] if s.chain_pos >= 0 else mg.controlled_cells(s, P)


def _gen_capture(s: GameState, P: int) -> list[Move]:
    moves: list[Move] = []
    for c in _chain_origins(s, P):
        mg.stack_captures(s, P, c, moves)
    moves.append(Move(SKIP_CAPTURE, P))
    return moves


def _gen_chain(s: GameState, P: int) -> list[Move]:
    moves: list[Move] = []
    for c in _chain_origins(s, P):
        mg.stack_captures(s, P, c, moves, CONTINUE_CAPTURE)
    return moves


def _gen_line(s: GameState, P: int) -> list[Move]:
    if s.pending_line:
        return [Move(ELIMINATE_RINGS, P, None, c, mode="line") for c in mg.controlled_cells(s, P)]
    return line_moves(s, P) or [Move(NO_LINE_ACTION, P)]


def _gen_territory(s: GameState, P: int) -> list[Move]:
    if s.pending_region is not None:
        return _territory_payments(s, P, s.pending_region)
    moves = [
        Move(CHOOSE_TERRITORY_OPTION, P, None, region[0], None, 0, region)
        for region in processable_regions(s, P)
    ]
    if moves:
        moves.append(Move(SKIP_TERRITORY, P))
        return moves
    return [Move(NO_TERRITORY_ACTION, P)]


def _territory_payments(s: GameState, P: int, region: tuple[int, ...]) -> list[Move]:
    inside = set(region)
    if s.turn_recovery:
        cells = [c for c in mg.buried_ring_stacks(s, P) if c not in inside]
        return [Move(ELIMINATE_RINGS, P, None, c, mode="recovery") for c in cells]
    cells = [c for c in mg.controlled_cells(s, P) if c not in inside]
    return [Move(ELIMINATE_RINGS, P, None, c, mode="territory") for c in cells]


def processable_regions(s: GameState, P: int) -> list[tuple[int, ...]]:
    """Regions P may claim: P can pay for them from outside (R143)."""
    regions = find_regions(s)
    if not regions:
        return []
    payers = mg.buried_ring_stacks(s, P) if s.turn_recovery else mg.controlled_cells(s, P)
    out = []
    for region in regions:
        inside = set(region)
        if any(c not in inside for c in payers):
            out.append(region)
    return out


def _gen_forced(s: GameState, P: int) -> list[Move]:
    return [Move(FORCED_ELIMINATION, P, None, c) for c in mg.controlled_cells(s, P)]


def _gen_over(s: GameState, P: int) -> list[Move]:
    return []


GENERATORS = {
    RING_PLACEMENT: _gen_placement,
    MOVEMENT: _gen_movement,
    CAPTURE: _gen_capture,
    CHAIN_CAPTURE: _gen_chain,
    LINE_PROCESSING: _gen_line,
    TERRITORY_PROCESSING: _gen_territory,
    FORCED_ELIMINATION_PHASE: _gen_forced,
    GAME_OVER: _gen_over,
}
