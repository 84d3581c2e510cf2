"""Line detection and the line decisions a player chooses between (R120-R123)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.move import CHOOSE_LINE_OPTION, PROCESS_LINE, Move

if TYPE_CHECKING:
    from engine.state import GameState


def find_lines(s: GameState, player: int) -> list[tuple[int, ...]]:
    """Maximal runs of >= line_length `player` markers along a line axis, in axis order."""
    g = s.geometry
    markers = s._markers
    length = s.line_length
    step, rays, opposite = g.step, g.rays, g.opposite
    out: list[tuple[int, ...]] = []
    for c, m in enumerate(markers):
        if m != player:
            continue
        for axis in g.line_axes:
            back = step[c][opposite[axis]]
            if back >= 0 and markers[back] == player:
                continue
            run = [c]
            for x in rays[c][axis]:
                if markers[x] != player:
                    break
                run.append(x)
            if len(run) >= length:
                out.append(tuple(run))
    return out


def line_moves(s: GameState, player: int) -> list[Move]:
    """process_line for exact lines; Option 1 and every Option-2 window for overlength lines."""
    length = s.line_length
    out: list[Move] = []
    for line in find_lines(s, player):
        if len(line) == length:
            out.append(Move(PROCESS_LINE, player, None, line[0], None, 0, line, line, 1))
            continue
        out.append(Move(CHOOSE_LINE_OPTION, player, None, line[0], None, 0, line, line, 1))
        for i in range(len(line) - length + 1):
            window = line[i : i + length]
            out.append(Move(CHOOSE_LINE_OPTION, player, None, line[0], None, 0, line, window, 2))
    return out
