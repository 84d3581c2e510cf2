"""`ringloop bench selfplay`: positions/s evaluated by selfplay against raw batched inference of
the same network on the same device, games/s, moves/s, and where selfplay's time goes.

One run: a network of the profile's size for the config (random weights, seeded), the
profile's selfplay search (PUCT or Gumbel, root noise, as `handlers.selfplay` plays it) over
``--games`` games, ``parallel_games`` of the device at a time (pipelined as the profile says:
the forward passes in a thread of their own, overlapping the search); then the same network's raw
forward passes on pre-encoded positions at the batch selfplay aimed at; then, as the
baseline, the old lock-step driver (8 games cut at 40 moves, one leaf per tree per batch)
on the same network and evaluator. Not a test: figures depend on the machine (printed first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from typing import Any

from engine.config import GameConfig

NAME = "selfplay"
HELP = "selfplay positions/s vs raw batched inference of the same network; time shares"

LOCKSTEP_GAMES = 8  # the old driver's batch (profile small's games_per_task before)
LOCKSTEP_MOVES = 40  # the baseline's games are cut here: its rate needs no whole games


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="square8_2p")
    parser.add_argument("--profile", default="small", help="loop profile (tiny, small, default)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1")
    parser.add_argument("--games", type=int, help="games to play (default: parallel_games)")
    parser.add_argument(
        "--max-moves",
        type=int,
        help="cut each game after this many moves (default: the profile's selfplay.max_moves; "
        "rates need no whole games, and the default profile's take minutes each on a CPU)",
    )
    parser.add_argument("--search", choices=("puct", "gumbel"), help="override selfplay.search")
    parser.add_argument("--leaves-per-tree", type=int, help="override selfplay.leaves_per_tree")
    parser.add_argument("--parallel", type=int, help="override parallel_games of the device")
    parser.add_argument(
        "--pipeline",
        action=argparse.BooleanOptionalAction,
        help="override selfplay.pipeline (the network overlapping the search in a thread)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU")
    parser.add_argument("--no-baseline", action="store_true", help="skip the lock-step baseline")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--inference",
        choices=("local", "shared"),
        default="local",
        help="shared: also N selfplay processes through one `ringloop inference` vs N local",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes for --inference shared")


def run(args: argparse.Namespace) -> int:
    try:
        setup = _setup(args)
    except ValueError as exc:
        print(f"ringloop bench selfplay: {exc}", file=sys.stderr)
        return 2
    report = _bench(args, *setup)
    _print(report, args.json)
    return 0


def _setup(args: argparse.Namespace) -> tuple[Any, ...]:
    import torch

    from handlers.settings import LoopSettings, LoopSettingsError

    try:
        config = GameConfig.parse(args.config)
    except (KeyError, ValueError):
        raise ValueError(f"unknown config {args.config!r} (e.g. square8_2p)") from None
    overrides: dict[str, Any] = {}
    if args.search:
        overrides["search"] = args.search
    if args.leaves_per_tree:
        overrides["leaves_per_tree"] = args.leaves_per_tree
    if args.pipeline is not None:
        overrides["pipeline"] = args.pipeline
    try:
        loop = LoopSettings.profile(args.profile, selfplay=overrides)
    except LoopSettingsError as exc:
        raise ValueError(str(exc)) from None
    try:
        device = torch.device(args.device)
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"device {args.device!r} is not usable here: {exc}") from None
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.threads < 1 or (args.games is not None and args.games < 1):
        raise ValueError(f"--threads and --games must be >= 1, got {args.threads}, {args.games}")
    if args.parallel is not None and args.parallel < 1:
        raise ValueError(f"--parallel must be >= 1, got {args.parallel}")
    if args.max_moves is not None and args.max_moves < 1:
        raise ValueError(f"--max-moves must be >= 1, got {args.max_moves}")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    return config, loop, device


def _network(config: GameConfig, loop: Any, device: Any, seed: int) -> Any:
    import torch

    from engine.encoding import network_spec
    from engine.network import build_network

    size = loop.training.network(config.name)
    torch.manual_seed(seed)
    spec = network_spec(config, blocks=size.blocks, channels=size.channels)
    return build_network(spec).to(device).eval()


def _bench(args: argparse.Namespace, config: GameConfig, loop: Any, device: Any) -> dict[str, Any]:
    from engine.players.neural import NetworkEvaluator
    from handlers.agents import model_agent, search_settings

    network = _network(config, loop, device, args.seed)
    search = search_settings(loop, "selfplay")
    width = args.parallel or loop.selfplay.parallel_for(device.type)
    games = args.games or width
    evaluator = NetworkEvaluator(network, device=device)
    agent = model_agent("bench", evaluator, search, sha256=None, noise=True)
    max_moves = args.max_moves or loop.selfplay.max_moves
    played, stats, seconds = _selfplay(config, loop, agent, games, width, args.seed, max_moves)
    raw_batch = max(64, round(stats.positions / max(stats.batches, 1)))
    raw = _raw(config, network, device, raw_batch, args.seed)
    report: dict[str, Any] = {
        "machine": _machine(device),
        "config": config.name,
        "profile": args.profile,
        "device": str(device),
        "search": search.kind,
        "simulations": search.simulations,
        "leaves_per_tree": search.leaves_per_tree,
        "parallel_games": width,
        "games": games,
        "max_moves": max_moves,
        "pipeline": loop.selfplay.pipeline,
        **_figures(played, stats, seconds, evaluator, loop.selfplay.pipeline),
        "raw_batch": raw_batch,
        "raw_evals_per_s": round(raw, 1),
    }
    report["eval_ratio"] = round(report["selfplay_evals_per_s"] / raw, 3)
    if args.inference == "shared":
        from ops.bench.shared_inference import Play, compare

        play = Play(config.name, games, width, max_moves, args.seed)
        report |= compare(loop, device, network, args.workers, play)
        report["shared_eval_ratio"] = round(report["shared_evals_per_s"] / raw, 3)
    if not args.no_baseline:
        base = NetworkEvaluator(network, device=device)
        base_agent = model_agent("bench", base, search, sha256=None, noise=True)
        started = time.perf_counter()
        _lockstep(config, loop, base_agent, LOCKSTEP_GAMES, args.seed)
        elapsed = time.perf_counter() - started
        report["lockstep_evals_per_s"] = round(base.positions_evaluated / elapsed, 1)
        report["lockstep_avg_batch"] = round(base.positions_evaluated / max(base.calls, 1), 1)
        report["lockstep_eval_ratio"] = round(report["lockstep_evals_per_s"] / raw, 3)
    return report


def _selfplay(config: GameConfig, loop: Any, agent: Any, games: int, width: int, seed: int,  # type: ignore[no-untyped-def]
              max_moves: int):  # fmt: skip
    from handlers.games import PlayStats, play_games

    stats = PlayStats()
    seeds = [seed * 1_000_003 + i for i in range(games)]
    started = time.perf_counter()
    played = play_games(config, [[agent] * config.num_players] * games, seeds,
                        max_moves=max_moves, adjudication=loop.selfplay.adjudication,
                        parallel=width, stats=stats, pipeline=loop.selfplay.pipeline_interval_s())  # fmt: skip
    return played, stats, time.perf_counter() - started


def _figures(
    played: list[Any], stats: Any, seconds: float, evaluator: Any, pipelined: bool
) -> dict[str, Any]:
    evals = evaluator.positions_evaluated
    moves = sum(len(g.moves) for g in played)
    parts = dict(stats.seconds)
    network_parts = evaluator.seconds
    shares = {
        "engine (moves played, legal moves of the mover)": parts["engine"],
        "tree walk (selection, state copies, moves applied)": parts["select"],
    }
    if pipelined:  # the forward passes run in their own thread, beside these shares
        shares["engine (legal moves of the leaves), encoding, priors, waiting"] = parts["evaluate"]
    else:
        inside = sum(network_parts.values())
        shares |= {
            "engine (legal moves of the leaves), batching": max(parts["evaluate"] - inside, 0.0),
            "encoding": network_parts["encoding"],
            "network": network_parts["network"],
            "priors (softmax over the legal slots)": network_parts["priors"],
        }
    shares["expansion and backup"] = parts["backup"]
    other = seconds - sum(shares.values())
    shares["other"] = max(other, 0.0)
    return {
        "seconds": round(seconds, 2),
        "selfplay_evals_per_s": round(evals / seconds, 1),
        "games_per_s": round(len(played) / seconds, 3),
        "moves_per_s": round(moves / seconds, 1),
        "avg_batch": round(evals / max(evaluator.calls, 1), 1),
        "evals": evals,
        "moves": moves,
        "shares": {k: round(v / seconds, 3) for k, v in shares.items()},
        "network_busy": round(network_parts["network"] / seconds, 3),
    }


def _raw(config: GameConfig, network: Any, device: Any, batch: int, seed: int) -> float:
    """Positions/s of the network's forward pass alone on ``batch`` pre-encoded positions:
    the evaluator's own forward (its inference graph, the same transfers to and from the
    device), nothing else."""
    import numpy as np

    from engine.encoding import encode_states
    from engine.players.neural import NetworkEvaluator
    from engine.state import GameState

    rng, states = random.Random(seed), list[GameState]()
    while len(states) < batch:
        state = GameState.initial(config)
        while not state.is_over and len(states) < batch and state.move_count < 200:
            states.append(state.copy())
            state.apply_unchecked(rng.choice(state.legal_moves()))
    planes = np.ascontiguousarray(encode_states(states))
    evaluator = NetworkEvaluator(network, device=device)
    for _ in range(3):  # warm-up (the first pass builds the inference graph)
        evaluator.forward(planes)
    passes, started = 0, time.perf_counter()
    while passes < 10 or time.perf_counter() - started < 2.0:
        evaluator.forward(planes)
        passes += 1
    elapsed = time.perf_counter() - started
    return passes * batch / elapsed


def _lockstep(config: GameConfig, loop: Any, agent: Any, games: int, seed: int) -> None:
    """The driver before continuous batching: all games move together, every simulation
    one evaluator batch of one leaf per game (the baseline)."""
    from engine.players.mcts import SearchTree, choose_move, expand_roots, simulate
    from handlers.games import _finished, _Table

    search = agent.search
    tables = [_Table(config, [agent] * config.num_players, seed * 7 + i) for i in range(games)]
    cap = min(loop.selfplay.max_moves, LOCKSTEP_MOVES)
    while active := [t for t in tables if not _finished(t, cap)]:
        searching = []
        for table in active:
            moves = table.state.legal_moves()
            if len(moves) == 1:
                table.play(moves[0], None)
            else:
                searching.append(table)
        if not searching:
            continue
        trees = [SearchTree(t.state, search) for t in searching]
        expand_roots(trees, agent.evaluator)
        for table, tree in zip(searching, trees, strict=True):
            tree.add_noise(table.noise_rng)
        for _ in range(search.simulations - 1):
            simulate(trees, agent.evaluator)
        for table, tree in zip(searching, trees, strict=True):
            hot = table.state.move_count < search.temperature_moves
            temperature = search.temperature if hot else 0.0
            move = choose_move(tree.visits(), temperature, table.rng, tree.values())
            table.play(move, tree.visits(), tree.root_value())


def _machine(device: Any) -> str:
    import torch

    text = f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    text += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def _print(report: dict[str, Any], as_json: bool) -> None:
    print(f"machine: {report['machine']}")
    print(f"{report['config']}, profile {report['profile']}, {report['device']}, "
          f"{report['search']} {report['simulations']} simulations, "
          f"{report['parallel_games']} games at once, {report['leaves_per_tree']} leaves per tree, "
          f"pipeline {'on' if report['pipeline'] else 'off'}")  # fmt: skip
    print(f"selfplay: {report['games']} games (at most {report['max_moves']} moves each) in "
          f"{report['seconds']} s: "
          f"{report['selfplay_evals_per_s']:,.0f} positions/s (avg batch {report['avg_batch']}), "
          f"{report['games_per_s']} games/s, {report['moves_per_s']:,.0f} moves/s")  # fmt: skip
    print(f"raw inference at batch {report['raw_batch']}: {report['raw_evals_per_s']:,.0f} "
          f"positions/s -> eval_ratio {report['eval_ratio']}")  # fmt: skip
    if "lockstep_eval_ratio" in report:
        print(f"baseline lock-step ({LOCKSTEP_GAMES} games, avg batch "
              f"{report['lockstep_avg_batch']}): {report['lockstep_evals_per_s']:,.0f} "
              f"positions/s -> eval_ratio {report['lockstep_eval_ratio']}")  # fmt: skip
    if "shared_ratio" in report:
        print(f"{report['workers']} selfplay processes: each its own network "
              f"{report['local_workers_evals_per_s']:,.0f} positions/s, through one inference "
              f"service {report['shared_evals_per_s']:,.0f} positions/s (avg batch "
              f"{report['service_avg_batch']}) -> shared_ratio {report['shared_ratio']}, "
              f"against raw inference {report['shared_eval_ratio']}")  # fmt: skip
    print("time shares of the driver's thread:" if report["pipeline"] else "time shares:")
    for part, share in report["shares"].items():
        print(f"  {part:<62} {share:6.1%}")
    print(f"  {'network busy (its own thread when pipelined)':<62} {report['network_busy']:6.1%}")
    if as_json:
        print(json.dumps(report))
