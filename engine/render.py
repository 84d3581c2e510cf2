"""Terminal rendering of a position (square and hex boards) for `ringloop play` and logs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.state import GameState

# A stack is "<controller><height>" ("13": player 1 controls a 3-ring stack; "+" for >= 10).
_MARKER = "abcd"  # markers: a = player 1 ... d = player 4
_COLLAPSED = "ABCD"  # collapsed territory: A = player 1 ...


def cell_text(s: GameState, cell: int) -> str:
    """Two characters: "13" stack (controller 1, height 3), " a" marker, "##"-style territory."""
    height = s.height(cell)
    if height:
        return f"{s.controller(cell)}{height if height < 10 else '+'}"
    if s.marker(cell):
        return " " + _MARKER[s.marker(cell) - 1]
    if s.collapsed(cell):
        return _COLLAPSED[s.collapsed(cell) - 1] * 2
    return " ."


def _square_rows(s: GameState) -> list[str]:
    g = s.geometry
    n = g.size
    rows = ["    " + "".join(f"{x:>3}" for x in range(n))]
    for y in range(n):
        cells = (cell_text(s, g.cell_of((x, y))) for x in range(n))
        rows.append(f"{y:>3} " + "".join(f" {c}" for c in cells))
    return rows


def _hex_rows(s: GameState) -> list[str]:
    """Rows of constant cube y, offset by half a cell per row so neighbours line up."""
    g = s.geometry
    r = g.radius
    rows = []
    for y in range(-r, r + 1):
        xs = [x for x in range(-r, r + 1) if abs(x + y) <= r]
        indent = " " * (abs(y) * 2)
        cells = " ".join(f"{cell_text(s, g.cell_of((x, y, -x - y))):>3}" for x in xs)
        rows.append(f"{y:>4} {indent}{cells}")
    return rows


def render(state: GameState) -> str:
    """The board plus a status line: to-move, phase, hands, eliminated rings, territory."""
    s = state
    rows = _hex_rows(s) if s.geometry.is_hex else _square_rows(s)
    players = "  ".join(
        f"P{p}: hand {s.rings_in_hand(p)} elim {s.eliminated_rings(p)} terr {s.territory(p)}"
        for p in range(1, s.num_players + 1)
    )
    if s.is_over:
        status = f"game over: winner {s.winner} ({s.victory_reason})"
    else:
        status = f"move {s.move_count}: player {s.current_player} to act, {s.phase}"
    legend = "stack = <controller><height>, marker a-d, territory AA-DD (players 1-4)"
    return "\n".join([*rows, status, players, legend])
