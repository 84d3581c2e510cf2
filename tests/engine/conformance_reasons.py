"""The specific grounds on which a conformance move must be rejected, checked on the position.

The engine's IllegalMoveError says only "no legal move matches it", so a rejection alone
proves nothing about *why*. Each ground here is a predicate over the position and the
rejected move that holds exactly when the named rule forbids the move; the runner asserts
the engine rejected the move *and* the ground holds. A predicate returns None when the
ground holds, else a sentence saying what in the position contradicts it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.lines import find_lines
from engine.move import (
    CHOOSE_LINE_OPTION,
    CHOOSE_TERRITORY_OPTION,
    CONTINUE_CAPTURE,
    ELIMINATE_RINGS,
    OVERTAKING_CAPTURE,
    PLACE_RING,
    PROCESS_LINE,
    SKIP_PLACEMENT,
    Move,
)
from engine.state import GameState
from engine.territory import find_regions

Ground = Callable[[GameState, Move], "str | None"]


def not_to_act(s: GameState, m: Move) -> str | None:
    """R070: only the player to act moves."""
    if m.player == s.current_player:
        return f"player {m.player} is the player to act"
    return None


def _to_act_first(ground: Ground) -> Ground:
    """A ground about the position itself only counts when the mover is the player to act."""

    def checked(s: GameState, m: Move) -> str | None:
        if m.player != s.current_player:
            return f"player {m.player} is not to act: rejected for R070, not this ground"
        return ground(s, m)

    checked.__doc__ = ground.__doc__
    return checked


@_to_act_first
def region_not_disconnected(s: GameState, m: Move) -> str | None:
    """R141/R142: the named region is not a disconnected region, so nothing offers it."""
    if m.type != CHOOSE_TERRITORY_OPTION:
        return f"{m.type} is not a territory decision"
    named = set(m.cells) or {m.to_cell}
    regions = [set(r) for r in find_regions(s)]
    if any(named <= r for r in regions):
        return f"cells {sorted(c for c in named if c is not None)} lie in a disconnected region"
    if any(named <= set(lm.cells) for lm in s.legal_moves() if lm.type == CHOOSE_TERRITORY_OPTION):
        return "a legal territory decision covers the named cells"
    return None


@_to_act_first
def no_elimination_cost(s: GameState, m: Move) -> str | None:
    """R145/R205: eliminate_rings_from_stack only pays a pending line or region cost."""
    if m.type != ELIMINATE_RINGS:
        return f"{m.type} is not an elimination"
    if s.pending_line:
        return "a line reward elimination is pending"
    if any(lm.type == ELIMINATE_RINGS for lm in s.legal_moves()):
        return "an elimination cost is pending (a legal eliminate_rings_from_stack exists)"
    return None


@_to_act_first
def capture_too_short(s: GameState, m: Move) -> str | None:
    """R101: a capture segment travels at least the attacker's stack height."""
    if m.type not in (OVERTAKING_CAPTURE, CONTINUE_CAPTURE) or m.from_cell is None:
        return f"{m.type} is not a capture segment"
    assert m.to_cell is not None
    height = s.height(m.from_cell)
    distance = s.geometry.distance(m.from_cell, m.to_cell)
    if distance >= height:
        return f"the segment travels {distance} >= the attacker's height {height}"
    return None


@_to_act_first
def no_chain_in_progress(s: GameState, m: Move) -> str | None:
    """R103: continue_capture_segment exists only while a chain capture is in progress."""
    if m.type != CONTINUE_CAPTURE:
        return f"{m.type} is not a chain continuation"
    if s.phase == "chain_capture":
        return "a chain capture is in progress"
    return None


def _named_line(s: GameState, m: Move) -> tuple[int, ...] | None:
    named = set(m.cells) or {m.to_cell}
    return next((line for line in find_lines(s, m.player) if named <= set(line)), None)


@_to_act_first
def line_reward_not_offered(s: GameState, m: Move) -> str | None:
    """R122: the line exists, but the chosen reward is not one of its legal rewards."""
    if m.type not in (PROCESS_LINE, CHOOSE_LINE_OPTION):
        return f"{m.type} is not a line decision"
    line = _named_line(s, m)
    if line is None:
        return "the move names no line of the player's markers"
    exact = len(line) == s.line_length
    if m.type == PROCESS_LINE and not exact:
        return None  # an overlength line needs an explicit option
    if m.option == 2 and exact:
        return None  # Option 2 exists only for overlength lines
    if m.collapse and m.option == 2 and len(m.collapse) != s.line_length:
        return None  # Option 2 collapses exactly lineLength markers
    return f"reward {m.to_notation()!r} is a legal reward for line {line}"


@_to_act_first
def no_line_formed(s: GameState, m: Move) -> str | None:
    """R120: with no run of lineLength markers there is no line decision to make."""
    if m.type not in (PROCESS_LINE, CHOOSE_LINE_OPTION):
        return f"{m.type} is not a line decision"
    lines = find_lines(s, m.player)
    return f"player {m.player} has lines {lines}" if lines else None


GROUNDS: dict[str, Ground] = {
    "not_to_act": not_to_act,
    "region_not_disconnected": region_not_disconnected,
    "no_elimination_cost": no_elimination_cost,
    "capture_too_short": capture_too_short,
    "no_chain_in_progress": no_chain_in_progress,
    "line_reward_not_offered": line_reward_not_offered,
    "no_line_formed": no_line_formed,
}


# ---- RingRift's own validation codes (rules-parity `tsValidation.code`) -----------------
def missing_marker(s: GameState, m: Move, raw: dict[str, Any]) -> str | None:
    """MISSING_MARKER: a position of the named line holds no marker of the player."""
    g = s.geometry
    positions = [p for line in raw.get("formedLines", []) for p in line["positions"]]
    if not positions:
        return "the move names no line positions"
    if all(s.marker(g.cell_of_position(p)) == m.player for p in positions):
        return "every line position holds a marker of the player"
    return None


def no_controlled_stacks(s: GameState, m: Move, raw: dict[str, Any]) -> str | None:
    """NO_CONTROLLED_STACKS: skip_placement needs a stack the player controls."""
    if m.type != SKIP_PLACEMENT:
        return f"{m.type} is not skip_placement"
    owned = [c for c in s.geometry.cells if s.height(c) and s.controller(c) == m.player]
    return f"player {m.player} controls stacks at {owned}" if owned else None


def insufficient_rings(s: GameState, m: Move, raw: dict[str, Any]) -> str | None:
    """INSUFFICIENT_RINGS: the placement needs more rings than the player holds in hand."""
    if m.type != PLACE_RING:
        return f"{m.type} is not place_ring"
    wanted = int(raw.get("placementCount") or 1)
    hand = s.rings_in_hand(m.player)
    return f"player {m.player} holds {hand} >= {wanted} rings" if hand >= wanted else None


VALIDATION_CODES: dict[str, Callable[[GameState, Move, dict[str, Any]], str | None]] = {
    "MISSING_MARKER": missing_marker,
    "NO_CONTROLLED_STACKS": no_controlled_stacks,
    "INSUFFICIENT_RINGS": insufficient_rings,
}
