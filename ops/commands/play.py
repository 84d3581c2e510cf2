"""`ringloop play`: plays one game between AI players (tiers, model ids, best) in the terminal and saves its record.

Seats are tiers (random, heuristic, mcts-<N>, d1-d5), registered model ids or ``best`` (the
config's current best, from the registry read model; a model seat plays the evaluation
search over its network, and the bus is only opened when a model seat is asked for). The
record goes to --out, else to ``<state dir>/records/play-<config>-<seed>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from engine.config import GameConfig
from engine.move import Move
from engine.players.base import Player
from engine.serialize import move_to_json, state_to_json
from engine.state import GameState
from engine.tiers import make_player
from handlers.settings import TIER_PATTERN
from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app, settings_from
from ops.settings import SettingsError

_SYMBOLS = "ABCD"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("play", help="play one AI game in the terminal")
    parser.add_argument("--config", required=True, help="e.g. square8_2p")
    parser.add_argument(
        "--players",
        required=True,
        help="comma-separated, one per seat: tiers, model ids or best (e.g. best,heuristic)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--out",
        type=Path,
        help="record file (default <state dir>/records/play-<config>-<seed>.json)",
    )
    parser.add_argument("--max-moves", type=int, default=2000)
    parser.add_argument("--quiet", action="store_true", help="print only the result")
    add_bus_arguments(parser)
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
        settings = settings_from(args)
    except (ValueError, SettingsError) as error:
        print(f"ringloop play: {error}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    players: list[Player] = []
    if all(_is_tier(n) for n in names):
        players = [make_player(n, config, rng=rng) for n in names]
    else:
        code = run_with_app(args, lambda app: _model_players(app, config, names, players))
        if code != 0:
            return code
    out = args.out or settings.state_dir / "records" / f"play-{config.name}-{seed}.json"
    return _play(args, config, names, players, seed, rng, out)


def _is_tier(name: str) -> bool:
    return re.fullmatch(TIER_PATTERN, name.lower()) is not None


async def _model_players(app: App, config: GameConfig, names: list[str], into: list[Player]) -> int:
    """Players for the seats: tiers as they are, models (ids or best) over their networks."""
    from engine.players import MCTSPlayer
    from handlers.agents import search_settings
    from handlers.models import best_model, checkpoint_cache, load_network, registered_model

    app.start_views(["registry"], ":memory:")
    await app.refresh("registry")
    registry = app.runners["registry"].state
    search = search_settings(app.settings.loop, "evaluation")
    for name in names:
        if _is_tier(name):
            into.append(make_player(name, config))
            continue
        model = (
            best_model(registry, config.name)
            if name == "best"
            else registered_model(registry, name)
        )
        if model is None or model.config != config.name or model.artifact is None:
            what = (
                f"{config.name} has no current best" if name == "best" else f"{name!r} is no tier"
            )
            print(f"ringloop play: {what} and no registered {config.name} model with weights "
                  "(tiers: random, heuristic, mcts-<N>, d1-d5)", file=sys.stderr)  # fmt: skip
            return 2
        evaluator, _ = await load_network(
            app.store, model, checkpoint_cache(app.settings.state_dir)
        )
        into.append(MCTSPlayer(evaluator, search, name=model.model_id))
        print(f"seat {len(into)}: model {model.model_id} (generation {model.generation}, "
              f"{search.simulations} simulations)")  # fmt: skip
    return 0


def _play(
    args: argparse.Namespace,
    config: GameConfig,
    names: list[str],
    players: list[Player],
    seed: int,
    rng: random.Random,
    out: Path,
) -> int:
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
    ranks = state.ranking() if state.is_over else "-"
    print(f"{config.name} seed {seed}: {outcome} after {len(moves)} moves; ranks {ranks}")
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = [n if _is_tier(n) else p.name for n, p in zip(names, players, strict=True)]
    out.write_text(json.dumps(_record(state, config, labels, moves, seed), indent=1))
    print(f"record written to {out}")
    return 0
