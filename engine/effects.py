"""What each move type does to a position: the appliers GameState.apply_unchecked dispatches to."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from engine import movegen as mg
from engine.geometry import Cell
from engine.legal import processable_regions
from engine.move import (
    CHOOSE_LINE_OPTION,
    CHOOSE_TERRITORY_OPTION,
    CONTINUE_CAPTURE,
    ELIMINATE_RINGS,
    FORCED_ELIMINATION,
    MOVE_STACK,
    NO_LINE_ACTION,
    NO_MOVEMENT_ACTION,
    NO_PLACEMENT_ACTION,
    NO_TERRITORY_ACTION,
    OVERTAKING_CAPTURE,
    PLACE_RING,
    PROCESS_LINE,
    RECOVERY_SLIDE,
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
    LINE_PROCESSING,
    MOVEMENT,
)
from engine.territory import border_markers, find_regions

if TYPE_CHECKING:
    from engine.state import GameState


# ---- appliers ------------------------------------------------------------------------
# An applier gets only moves of its type, which carry the cells that type needs (the
# generators and parsers build them so); cast() narrows `Cell | None` for mypy without a
# runtime check (hot path).
def _apply_place(s: GameState, m: Move) -> None:
    P, c = m.player, cast(Cell, m.to_cell)
    s._hand[P] -= m.count
    s._set_stack(c, (P,) * m.count + s._stacks[c])
    s.must_move = c
    s.phase = MOVEMENT


def _apply_to_movement(s: GameState, m: Move) -> None:
    s.phase = MOVEMENT


def _apply_swap(s: GameState, m: Move) -> None:
    s.swapped = True
    s.swap_offered = False


def _walk_path(s: GameState, P: int, path: tuple[int, ...]) -> None:
    """Flip opponent markers and collapse own markers passed over (R092)."""
    markers = s._markers
    for x in path:
        owner = markers[x]
        if owner == P:
            s._collapse(x, P)
        elif owner:
            s._set_marker(x, P)


def _land(s: GameState, P: int, cell: int, st: tuple[int, ...]) -> None:
    if s._markers[cell]:
        s._set_marker(cell, 0)
        s._eliminate(P, st[:1])
        st = st[1:]
    if st:
        s._set_stack(cell, st)


def _apply_move_stack(s: GameState, m: Move) -> None:
    P, a, b = m.player, cast(Cell, m.from_cell), cast(Cell, m.to_cell)
    d, k = s.geometry.ray_pos[a][b]
    st = s._stacks[a]
    s._set_stack(a, ())
    s._set_marker(a, P)
    _walk_path(s, P, s.geometry.rays[a][d][: k - 1])
    _land(s, P, b, st)
    s.must_move = -1
    s.chain_pos = b
    if s._stacks[b] and mg.has_capture(s, P, b):
        s.phase = CAPTURE
    else:
        s.phase = LINE_PROCESSING


def _apply_capture(s: GameState, m: Move) -> None:
    P, a, b = m.player, cast(Cell, m.from_cell), cast(Cell, m.to_cell)
    t = cast(Cell, m.capture_target)
    g = s.geometry
    d, kt = g.ray_pos[a][t]
    _, kb = g.ray_pos[a][b]
    ray = g.rays[a][d]
    st = s._stacks[a]
    s._set_stack(a, ())
    s._set_marker(a, P)
    _walk_path(s, P, ray[: kt - 1])
    _walk_path(s, P, ray[kt : kb - 1])
    target = s._stacks[t]
    s._set_stack(t, target[1:])
    _land(s, P, b, st + target[:1])
    s.must_move = -1
    s.chain_pos = b
    if s._stacks[b] and mg.has_capture(s, P, b):
        s.phase = CHAIN_CAPTURE
    else:
        s.phase = LINE_PROCESSING


def _apply_to_lines(s: GameState, m: Move) -> None:
    s.phase = LINE_PROCESSING


def _extract_buried(s: GameState, P: int, cell: int) -> None:
    """Remove P's bottommost ring from the stack at `cell` (R113)."""
    st = s._stacks[cell]
    i = len(st) - 1 - st[::-1].index(P)
    s._set_stack(cell, st[:i] + st[i + 1 :])
    s._eliminate(P, (P,))


def _apply_recovery(s: GameState, m: Move) -> None:
    P, a, b = m.player, cast(Cell, m.from_cell), cast(Cell, m.to_cell)
    s._set_marker(a, 0)
    if m.extraction is not None:
        _extract_buried(s, P, m.extraction)
    if m.mode == "stack_strike":
        st = s._stacks[b]
        s._eliminate(P, st[:1])
        s._set_stack(b, st[1:])
    else:
        s._set_marker(b, P)
        for c in m.collapse:
            s._collapse(c, P)
    s.turn_recovery = True
    s.phase = LINE_PROCESSING


def _apply_line(s: GameState, m: Move) -> None:
    P = m.player
    for c in m.collapse:
        s._collapse(c, P)
    if len(m.collapse) == len(m.cells) and any(st and st[0] == P for st in s._stacks):
        s.pending_line = True
    s._after_line_decision()


def _apply_eliminate(s: GameState, m: Move) -> None:
    P, c = m.player, cast(Cell, m.to_cell)
    st = s._stacks[c]
    if m.mode == "line":
        s._eliminate(P, st[:1])
        s._set_stack(c, st[1:])
        s.pending_line = False
        return
    if m.mode == "recovery":
        _extract_buried(s, P, c)
    else:
        cap = mg.cap_height(st)
        s._eliminate(P, st[:cap])
        s._set_stack(c, st[cap:])
    s.pending_region = None
    if not processable_regions(s, P):
        s._exit_territory()


def _apply_no_line(s: GameState, m: Move) -> None:
    s._enter_territory()


def _apply_region(s: GameState, m: Move) -> None:
    P = m.player
    region = m.cells
    border = border_markers(s, region, find_regions(s).get(region, 0))
    for c in region:
        st = s._stacks[c]
        if st:
            s._eliminate(P, st)
            s._set_stack(c, ())
        s._collapse(c, P)
    for c in border:
        s._collapse(c, P)
    s.pending_region = region


def _apply_exit_territory(s: GameState, m: Move) -> None:
    s._exit_territory()


def _apply_forced(s: GameState, m: Move) -> None:
    c = cast(Cell, m.to_cell)
    st = s._stacks[c]
    cap = mg.cap_height(st)
    s._eliminate(m.player, st[:cap])
    s._set_stack(c, st[cap:])
    s._end_turn()


APPLIERS = {
    PLACE_RING: _apply_place,
    SKIP_PLACEMENT: _apply_to_movement,
    NO_PLACEMENT_ACTION: _apply_to_movement,
    SWAP_SIDES: _apply_swap,
    MOVE_STACK: _apply_move_stack,
    OVERTAKING_CAPTURE: _apply_capture,
    CONTINUE_CAPTURE: _apply_capture,
    SKIP_CAPTURE: _apply_to_lines,
    RECOVERY_SLIDE: _apply_recovery,
    SKIP_RECOVERY: _apply_to_lines,
    NO_MOVEMENT_ACTION: _apply_to_lines,
    PROCESS_LINE: _apply_line,
    CHOOSE_LINE_OPTION: _apply_line,
    ELIMINATE_RINGS: _apply_eliminate,
    NO_LINE_ACTION: _apply_no_line,
    CHOOSE_TERRITORY_OPTION: _apply_region,
    SKIP_TERRITORY: _apply_exit_territory,
    NO_TERRITORY_ACTION: _apply_exit_territory,
    FORCED_ELIMINATION: _apply_forced,
}
