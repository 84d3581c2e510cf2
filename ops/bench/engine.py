"""`ringloop bench engine`: random-playout and move-generation throughput of the rules engine."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time

from engine.config import ALL_CONFIGS, GameConfig
from engine.state import GameState

NAME = "engine"
HELP = "random playouts per config: applied moves/s (bookkeeping included) and games/s"

_SMALL = ("square8", "hex8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--games", type=int, default=20, help="games per small-board config")
    parser.add_argument("--large-games", type=int, default=2, help="games per large-board config")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--config", action="append", type=_config, help="only these configs (e.g. square8_2p)"
    )


def _config(text: str) -> str:
    try:
        return GameConfig.parse(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def playout(config: GameConfig, rng: random.Random) -> tuple[int, int]:
    """One random game; returns (moves applied, legal moves generated)."""
    s = GameState.initial(config)
    generated = 0
    while not s.is_over:
        moves = s.legal_moves()
        generated += len(moves)
        s.apply_unchecked(moves[rng.randrange(len(moves))])
    return s.move_count, generated


def bench_config(config: GameConfig, games: int, rng: random.Random) -> dict[str, float]:
    moves = generated = 0
    start = time.perf_counter()
    for _ in range(games):
        m, g = playout(config, rng)
        moves += m
        generated += g
    elapsed = time.perf_counter() - start
    return {
        "games": games,
        "moves": moves,
        "seconds": round(elapsed, 3),
        "moves_per_s": round(moves / elapsed, 1),
        "games_per_s": round(games / elapsed, 3),
        "generated_moves_per_s": round(generated / elapsed, 1),
    }


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    configs = [GameConfig.parse(c) for c in args.config] if args.config else list(ALL_CONFIGS)
    machine = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(
        f"machine: {machine['platform']}, {machine['cpu_count']} CPUs, Python {machine['python']}"
    )
    print(
        f"{'config':<14} {'games':>5} {'moves':>7} {'moves/s':>10} {'games/s':>9} {'gen moves/s':>12}"
    )
    results: dict[str, object] = {}
    for config in configs:
        games = args.games if config.board in _SMALL else args.large_games
        r = bench_config(config, games, rng)
        results[config.name] = r
        print(
            f"{config.name:<14} {r['games']:>5} {r['moves']:>7} {r['moves_per_s']:>10.0f} "
            f"{r['games_per_s']:>9.2f} {r['generated_moves_per_s']:>12.0f}"
        )
    if args.json:
        print(json.dumps(results))  # keyed by config only; the machine is on the first line
    return 0
