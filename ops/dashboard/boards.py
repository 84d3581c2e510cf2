"""Replays a stored GameCompleted move by move into board frames the game viewer draws.

The engine replays the record (every move checked for legality, as training does); each
frame lists the occupied cells only: [cell, controller, height, marker, collapsed]. The
layout gives each cell of the board a centre in board units (square grid, or pointy-top
hexes for the hex boards), so the page draws any board the same way.
"""

from __future__ import annotations

import math
from typing import Any

from engine.config import GameConfig
from engine.geometry import geometry
from engine.move import Move
from engine.state import GameState
from events import GameCompleted

SQRT3 = math.sqrt(3.0)


def layout(board: str) -> dict[str, Any]:
    """Cell centres in board units: a square grid, or axial hexes of unit radius."""
    g = geometry(board)
    if g.is_hex:
        centres = [(SQRT3 * (c[0] + c[1] / 2), 1.5 * c[1]) for c in map(g.coords, g.cells)]
    else:
        centres = [(float(c[0]), float(c[1])) for c in map(g.coords, g.cells)]
    return {"board": board, "hex": g.is_hex, "keys": list(g.keys),
            "centres": [[round(x, 4), round(y, 4)] for x, y in centres]}  # fmt: skip


def frame(state: GameState, ply: int, move: str | None) -> dict[str, Any]:
    """The position after `ply` moves: occupied cells, who is to act, the players' counts."""
    cells = []
    for cell in state.geometry.cells:
        height, marker, collapsed = state.height(cell), state.marker(cell), state.collapsed(cell)
        if height or marker or collapsed:
            controller = state.controller(cell) if height else 0
            cells.append([cell, controller, height, marker, collapsed])
    players = [{"player": p, "hand": state.rings_in_hand(p), "eliminated": state.eliminated_rings(p),
                "territory": state.territory(p)} for p in range(1, state.num_players + 1)]  # fmt: skip
    return {"ply": ply, "move": move, "to_act": state.current_player, "phase": str(state.phase),
            "over": state.is_over, "winner": state.winner, "cells": cells, "players": players}  # fmt: skip


def replay(record: GameCompleted) -> dict[str, Any]:
    """Every frame of a recorded game, from the empty board to its last move.

    An illegal or unreadable move stops the replay there: the frames so far are returned
    with `error` naming the move (a record the engine cannot follow is shown, not hidden).
    """
    config = GameConfig.parse(record.config)
    state = GameState.initial(config)
    frames = [frame(state, 0, None)]
    error = None
    for ply, notation in enumerate(record.moves, 1):
        try:
            state.apply(Move.from_notation(notation))
        except ValueError as exc:
            error = f"move {ply} {notation!r}: {exc}"
            break
        frames.append(frame(state, ply, notation))
    return {"game_id": record.game_id, "config": record.config, "purpose": record.purpose,
            "seats": [s.model_dump() for s in record.seats], "winner": record.winner,
            "ranking": record.ranking, "termination": record.termination,
            "model_id": record.model_id, "generation": record.generation,
            "players": config.num_players, "layout": layout(config.board),
            "frames": frames, "error": error}  # fmt: skip
