"""`ringloop play`: plays one game between tiered AI players in the terminal and saves its record."""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
from pathlib import Path
from typing import Any

from engine.config import GameConfig
from engine.move import Move
from engine.serialize import move_to_json, state_to_json
from engine.state import GameState
from engine.tiers import make_player

_SYMBOLS = "ABCD"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("play", help="play one AI game in the terminal")
    parser.add_argument("--config", required=True, help="e.g. square8_2p")
    parser.add_argument(
        "--players",
        required=True,
        help="comma-separated tiers, one per seat (e.g. heuristic,random)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--out", type=Path, help="write the game record JSON here")
    parser.add_argument("--max-moves", type=int, default=2000)
    parser.add_argument("--quiet", action="store_true", help="print only the result")
    parser.set_defaults(func=run)


def _fallback_render(state: GameState) -> str:
    """Text board: A3 = player 1 stack of height 3, a = player-1 marker, #1 = collapsed."""
    g = state.geometry
    rows: dict[int, list[tuple[int, str]]] = {}
    for cell in g.cells:
        coords = g.coords(cell)
        row, col = (coords[1], coords[0]) if not g.is_hex else (coords[0], coords[1])
        if state.height(cell):
            token = f"{_SYMBOLS[state.controller(cell) - 1]}{state.height(cell)}"
        elif state.collapsed(cell):
            token = f"#{state.collapsed(cell)}"
        elif state.marker(cell):
            token = _SYMBOLS[state.marker(cell) - 1].lower()
        else:
            token = "."
        rows.setdefault(row, []).append((col, token))
    lines = []
    for row in sorted(rows):
        indent = " " * (2 * abs(row)) if g.is_hex else ""
        lines.append(indent + " ".join(f"{t:>3}" for _, t in sorted(rows[row])))
    return "\n".join(lines)


def _renderer():
    try:
        return importlib.import_module("engine.render").render
    except (ImportError, AttributeError):
        return _fallback_render


def _record(state: GameState, config: GameConfig, names: list[str], moves, seed) -> dict[str, Any]:
    g = state.geometry
    return {
        "boardType": config.board,
        "numPlayers": config.num_players,
        "players": [{"playerNumber": i + 1, "type": "ai", "tier": n} for i, n in enumerate(names)],
        "seed": seed,
        "moves": [move_to_json(m, g) for m in moves],
        "notation": [m.to_notation() for m in moves],
        "winner": state.winner,
        "victoryReason": state.victory_reason,
        "ranking": state.ranking() if state.is_over else None,
        "finalState": state_to_json(state),
    }


def run(args: argparse.Namespace) -> int:
    try:
        config = GameConfig.parse(args.config)
        names = [n.strip() for n in args.players.split(",") if n.strip()]
        if len(names) != config.num_players:
            raise ValueError(f"{config.name} needs {config.num_players} players, got {names!r}")
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
        rng = random.Random(seed)
        players = [make_player(n, config, rng=rng) for n in names]
    except ValueError as error:
        print(f"ringloop play: {error}", file=sys.stderr)
        return 2
    render = _renderer()
    state = GameState.initial(config)
    moves: list[Move] = []
    while not state.is_over and len(moves) < args.max_moves:
        move = players[state.current_player - 1].select_move(state, rng)
        state.apply(move)
        moves.append(move)
        if not args.quiet:
            print(f"\nmove {len(moves)}: player {move.player} {move.to_notation()}")
            print(render(state))
    outcome = f"winner: player {state.winner}" if state.is_over else "move cap reached"
    print(
        f"{config.name} seed {seed}: {outcome} after {len(moves)} moves; ranks {state.ranking() if state.is_over else '-'}"
    )
    if args.out:
        args.out.write_text(json.dumps(_record(state, config, names, moves, seed), indent=1))
        print(f"record written to {args.out}")
    return 0
