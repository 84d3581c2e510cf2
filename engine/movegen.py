"""Legal-move generation for placement, movement, capture and recovery (R080-R115)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from engine.geometry import geometry
from engine.move import (
    CONTINUE_CAPTURE,
    MOVE_STACK,
    OVERTAKING_CAPTURE,
    PLACE_RING,
    RECOVERY_SLIDE,
    Move,
)

if TYPE_CHECKING:
    from engine.state import GameState


def cap_height(st: tuple[int, ...]) -> int:
    """Length of the run of the top ring's colour from the top (R022)."""
    top = st[0]
    n = 1
    for r in st[1:]:
        if r != top:
            break
        n += 1
    return n


def has_action_from(s: GameState, cell: int, height: int, cap: int) -> bool:
    """Whether a stack of this height and cap at `cell` has a move or capture (R091, R101)."""
    stacks = s._stacks
    collapsed = s._collapsed
    for ray in s.geometry.rays[cell]:
        k = 0
        for x in ray:
            k += 1
            if collapsed[x]:
                break
            st = stacks[x]
            if st:
                if cap_height(st) <= cap:
                    j = k
                    for y in ray[k:]:
                        j += 1
                        if collapsed[y] or stacks[y]:
                            break
                        if j >= height:
                            return True
                break
            if k >= height:
                return True
    return False


def stack_has_action(s: GameState, cell: int) -> bool:
    st = s._stacks[cell]
    return has_action_from(s, cell, len(st), cap_height(st))


def own_rings_on_board(s: GameState, player: int) -> int:
    return sum(st.count(player) for st in s._stacks if st)


def placement_room(s: GameState, player: int) -> int:
    """Rings the player may still place: hand, capped by the own-colour supply (R020)."""
    hand = s._hand[player]
    if hand <= 0:
        return 0
    return min(hand, s.rings_per_player - own_rings_on_board(s, player))


_new = tuple.__new__


def free_run_masks(s: GameState, longest: int) -> list[int]:
    """Bit masks over the geometry's grid (Geometry.bit): entry n - 1 holds the cells from
    which some ray's first n cells are free of stacks and collapse (a non-capture move of n
    cells), for n = 1..longest. Built by shifting the free cells along each direction, so
    the whole board costs a few big-integer operations per direction and distance."""
    g = s.geometry
    bit, stacks, collapsed = g.bit, s._stacks, s._collapsed
    blocked = 0
    for c in g.cells:
        if stacks[c] or collapsed[c]:
            blocked |= bit[c]
    free = g.valid_mask & ~blocked
    masks = [0] * longest
    for offset in g.move_offsets:
        run = -1  # cells whose first k steps along the direction are all free
        for k in range(1, longest + 1):
            shift = k * offset
            run &= free >> shift if shift > 0 else free << -shift
            masks[k - 1] |= run
    return [mask & g.valid_mask for mask in masks]


def placements(s: GameState, player: int) -> list[Move]:
    """place_ring moves passing no-dead-placement (R081, R082)."""
    room = placement_room(s, player)
    out: list[Move] = []
    if room <= 0:
        return out
    stacks, markers, collapsed = s._stacks, s._markers, s._collapsed
    top_count = min(3, room)
    runs = free_run_masks(s, top_count)
    longest = runs[-1]
    bit = s.geometry.bit
    moves = _placement_moves(s.geometry.board)[player]
    for c in s.geometry.cells:
        if collapsed[c] or markers[c]:
            continue
        st = stacks[c]
        if st:
            cap = cap_height(st) + 1 if st[0] == player else 1
            if has_action_from(s, c, len(st) + 1, cap):
                out.append(moves[c][0])
            continue
        b = bit[c]
        if longest & b:  # a free run for the tallest stack: every count
            out += moves[c][:top_count]
            continue
        for n in range(1, top_count + 1):
            # a free run of n cells is a move; without one, only a capture can be
            if runs[n - 1] & b or has_action_from(s, c, n, n):
                out.append(moves[c][n - 1])
    return out


@cache
def _placement_moves(board: str) -> tuple[tuple[tuple[Move, ...], ...], ...]:
    """Every place_ring move of a board by [player][cell][count - 1], made once: a position
    in the placement phase has up to three per empty cell (square8: ~190), and moves are
    immutable values, so every list shares these."""
    return tuple(
        tuple(
            tuple(
                _new(Move, (PLACE_RING, player, None, c, None, n, (), (), 0, "", None))
                for n in range(1, 4)
            )
            for c in geometry(board).cells
        )
        for player in range(5)
    )


def any_placement(s: GameState, player: int) -> bool:
    """Cheaper existence test for placements (used by LPS and skip checks)."""
    if placement_room(s, player) <= 0:
        return False
    stacks, markers, collapsed = s._stacks, s._markers, s._collapsed
    for c in s.geometry.cells:
        if collapsed[c] or markers[c]:
            continue
        st = stacks[c]
        if st:
            cap = cap_height(st) + 1 if st[0] == player else 1
            if has_action_from(s, c, len(st) + 1, cap):
                return True
        elif (
            has_action_from(s, c, 1, 1)
            or has_action_from(s, c, 2, 2)
            or has_action_from(s, c, 3, 3)
        ):
            return True
    return False


def stack_moves(s: GameState, player: int, cell: int, out: list[Move]) -> None:
    """Non-capture moves of the stack at `cell` (R091)."""
    stacks, collapsed = s._stacks, s._collapsed
    height = len(stacks[cell])
    along = _stack_moves(s.geometry.board, player)[cell]
    for ray, moves in zip(s.geometry.rays[cell], along, strict=True):
        if len(ray) < height:
            continue
        k = 0
        for x in ray:
            if collapsed[x] or stacks[x]:
                break
            if k + 1 >= height:
                out.append(moves[k])
            k += 1


@cache
def _stack_moves(board: str, player: int) -> tuple[tuple[tuple[Move, ...], ...], ...]:
    """A player's move_stack moves by [from cell][direction][distance - 1] along the
    geometry's rays, made once (shared immutable values, as `_placement_moves`)."""
    rays = geometry(board).rays
    return tuple(
        tuple(
            tuple(_new(Move, (MOVE_STACK, player, c, x, None, 0, (), (), 0, "", None)) for x in ray)
            for ray in rays[c]
        )
        for c in geometry(board).cells
    )


def stack_captures(
    s: GameState, player: int, cell: int, out: list[Move], kind: str = OVERTAKING_CAPTURE
) -> None:
    """Overtaking-capture segments from `cell` (R101): none unless `player` controls it (a
    landing on a marker can eliminate the top ring and hand the attacker to an opponent)."""
    stacks, collapsed = s._stacks, s._collapsed
    st = stacks[cell]
    if not st or st[0] != player:
        return
    height = len(st)
    cap = cap_height(st)
    for ray in s.geometry.rays[cell]:
        k = 0
        for x in ray:
            k += 1
            if collapsed[x]:
                break
            target = stacks[x]
            if target:
                if cap_height(target) <= cap:
                    j = k
                    for y in ray[k:]:
                        j += 1
                        if collapsed[y] or stacks[y]:
                            break
                        if j >= height:
                            out.append(
                                _new(Move, (kind, player, cell, y, x, 0, (), (), 0, "", None))
                            )
                break


def has_capture(s: GameState, player: int, cell: int) -> bool:
    out: list[Move] = []
    stack_captures(s, player, cell, out)
    return bool(out)


def controlled_cells(s: GameState, player: int) -> list[int]:
    return [c for c, st in enumerate(s._stacks) if st and st[0] == player]


def movement_moves(s: GameState, player: int) -> list[Move]:
    """move_stack and overtaking_capture moves (restricted to the must-move stack, if any)."""
    out: list[Move] = []
    cells = [s.must_move] if s.must_move >= 0 else controlled_cells(s, player)
    for c in cells:
        stack_moves(s, player, c, out)
        stack_captures(s, player, c, out)
    return out


def has_real_action(s: GameState, player: int) -> bool:
    """Placement, non-capture move or capture available (R172), ignoring must-move."""
    for c in controlled_cells(s, player):
        if stack_has_action(s, c):
            return True
    return any_placement(s, player)


def buried_ring_stacks(s: GameState, player: int) -> list[int]:
    """Stacks holding a ring of `player` below the top (R110, R113)."""
    return [c for c, st in enumerate(s._stacks) if st and player in st[1:]]


def recovery_eligible(s: GameState, player: int) -> bool:
    """0 controlled stacks, >= 1 own marker, >= 1 buried own ring (R110)."""
    stacks = s._stacks
    if any(st and st[0] == player for st in stacks):
        return False
    if player not in s._markers:
        return False
    return any(st and player in st for st in stacks)


def _line_through(s: GameState, player: int, cell: int, vacated: int, axis: int) -> tuple[int, ...]:
    """The run of `player` markers through `cell` along `axis`, `vacated` counting as empty."""
    g = s.geometry
    markers = s._markers
    back: list[int] = []
    for x in g.rays[cell][g.opposite[axis]]:
        if x == vacated or markers[x] != player:
            break
        back.append(x)
    fwd: list[int] = []
    for x in g.rays[cell][axis]:
        if x == vacated or markers[x] != player:
            break
        fwd.append(x)
    return tuple(reversed(back)) + (cell,) + tuple(fwd)


def recovery_moves(s: GameState, player: int) -> list[Move]:
    """recovery_slide moves (R111-R113); each names its line, reward option and paying stack."""
    g = s.geometry
    stacks, markers, collapsed = s._stacks, s._markers, s._collapsed
    length = s.line_length
    payers = buried_ring_stacks(s, player)
    own = [c for c, m in enumerate(markers) if m == player]
    out: list[Move] = []
    for m in own:
        for b in g.neighbors[m]:
            if collapsed[b] or markers[b] or stacks[b]:
                continue
            for axis in g.line_axes:
                line = _line_through(s, player, b, m, axis)
                if len(line) < length:
                    continue
                for e in payers:
                    out.append(
                        Move(RECOVERY_SLIDE, player, m, b, None, 0, line, line, 1, "line", e)
                    )
                for i in range(len(line) - length + 1) if len(line) > length else ():
                    window = line[i : i + length]
                    out.append(Move(RECOVERY_SLIDE, player, m, b, None, 0, line, window, 2, "line"))
    if out:
        return out
    for m in own:
        for b in g.neighbors[m]:
            if collapsed[b] or markers[b]:
                continue
            mode = "stack_strike" if stacks[b] else "fallback"
            for e in payers:
                out.append(Move(RECOVERY_SLIDE, player, m, b, None, 0, (), (), 0, mode, e))
    return out


def chain_moves(s: GameState, player: int) -> list[Move]:
    out: list[Move] = []
    stack_captures(s, player, s.chain_pos, out, CONTINUE_CAPTURE)
    return out
