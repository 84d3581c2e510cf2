"""`ringloop bench learning`: run the real loop for M minutes; report each promoted generation's
win rates and a final evaluation of the best model against random and heuristic.

It starts `ringloop up --profile <preset>` (selfplay, trainer and evaluator as child
processes, exactly as a user runs it) on a fresh state folder for the given minutes, stops
it (SIGTERM: it drains), then reads the log: per promoted generation, its gating scores;
and plays `--final-games` games of the final best model (with its search, no noise)
against random and heuristic, seats alternating. Not a test: figures depend on the
machine (recorded in the output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from engine.config import GameConfig
from events import (
    LOG_STREAM,
    EvaluationCompleted,
    ModelPromoted,
    TrainingCompleted,
    TrainingFailed,
)
from handlers.agents import model_agent, search_settings, tier_agent
from handlers.games import play_games
from handlers.models import best_model, checkpoint_cache, load_network
from handlers.profiles import PROFILES
from ops.app import App
from ops.logging import configure_logging
from ops.settings import load_settings

NAME = "learning"
HELP = "run the loop on one config for some minutes; win rates of each promoted generation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="square8_2p")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--preset", choices=sorted(PROFILES), default="small")
    parser.add_argument("--final-games", type=int, default=40, help="games per baseline at the end")
    parser.add_argument("--selfplay-workers", type=int, default=1)
    parser.add_argument(
        "--search", choices=("puct", "gumbel"), help="root search of selfplay and gating"
    )
    parser.add_argument("--keep", type=Path, help="state folder to keep (default: a temp one)")


def run(args: argparse.Namespace) -> int:
    configure_logging("warning")
    if args.minutes <= 0 or args.final_games < 2:
        print("ringloop bench learning: --minutes must be > 0, --final-games ≥ 2", file=sys.stderr)
        return 2
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _bench(args, args.keep)
    with tempfile.TemporaryDirectory(prefix="ringloop-bench-learning-") as state:
        return _bench(args, Path(state))


def _bench(args: argparse.Namespace, state: Path) -> int:
    text = f'[loop]\nconfigs = ["{args.config}"]\n'
    if args.search:  # beside the preset, so the profile's other fields stay under it
        text = f'[loop]\npreset = "{args.preset}"\nconfigs = ["{args.config}"]\n'
        text += f'[loop.selfplay]\nsearch = "{args.search}"\n'
        text += f'[loop.evaluation]\nsearch = "{args.search}"\n'
    (state / "settings.toml").write_text(text)
    print(f"bench learning: {args.config}, preset {args.preset}, {args.minutes} min", flush=True)
    started = time.perf_counter()
    if not _run_up(args, state):
        print(f"bench learning: interrupted; the loop was stopped, its log is in {state}")
        return 130
    seconds = time.perf_counter() - started
    report = asyncio.run(_report(args, state, seconds))
    _print_report(report, args.json)
    return 0


class _Interrupted(Exception):
    """The bench itself was asked to stop (SIGTERM or Ctrl-C)."""


def _interrupt(signum: int, frame: object) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def _run_up(args: argparse.Namespace, state: Path) -> bool:
    """Run the loop for the given minutes, then stop it (it drains); False if the bench was
    interrupted first. Either way the loop (and its nats-server) is stopped, never orphaned."""
    argv = [sys.executable, "-m", "ops", "up", "--profile", args.preset, "--state-dir", str(state)]
    argv += ["--progress-every", "60", "--selfplay-workers", str(args.selfplay_workers)]
    previous = signal.signal(signal.SIGTERM, _interrupt)
    process = subprocess.Popen(argv)
    completed = True
    try:
        process.wait(timeout=args.minutes * 60)
    except subprocess.TimeoutExpired:
        pass
    except (_Interrupted, KeyboardInterrupt):
        completed = False
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second request does not cut the drain
        _stop(process)
        signal.signal(signal.SIGTERM, previous)
    return completed


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _report(args: argparse.Namespace, state: Path, seconds: float) -> dict[str, Any]:
    settings = load_settings(
        None, state_dir=str(state), loop={"preset": args.preset, "configs": [args.config]}
    )
    app = await App.open(settings)
    try:
        started = await _first_event_time(app)
        for line in await _generations(app, args.config, started):
            print(line, flush=True)
        summary = await _summary(app, args.config, seconds)
        summary.update(await _final_evaluation(app, args.config, args.final_games))
        return summary
    finally:
        await app.close()


async def _first_event_time(app: App) -> Any:
    first = await app.store.read_all(LOG_STREAM, "loop.>", end_seq=1)
    return first[0].event.occurred_at if first else None


async def _events(app: App, subject: str) -> list[Any]:
    return [s.event for s in await app.store.read_all(LOG_STREAM, subject)]


def _rates(evaluation: EvaluationCompleted | None) -> dict[str, float | None]:
    scores = {r.opponent: r.score for r in evaluation.results} if evaluation else {}
    return {"random": scores.get("random"), "heuristic": scores.get("heuristic")}


async def _generations(app: App, config: str, started: Any) -> list[str]:
    evaluations = {e.candidate: e for e in await _events(app, f"loop.eval.completed.{config}")}
    lines = []
    for index, promoted in enumerate(await _events(app, f"loop.model.promoted.{config}"), 1):
        if not isinstance(promoted, ModelPromoted):
            continue
        rates = _rates(evaluations.get(promoted.model_id))
        at = (promoted.occurred_at - started).total_seconds() if started else 0.0
        lines.append(
            f"  t={at:7.1f}s generation {index}: "
            f"{promoted.model_id} vs random {_pct(rates['random'])}, "
            f"vs heuristic {_pct(rates['heuristic'])}"
        )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


async def _summary(app: App, config: str, seconds: float) -> dict[str, Any]:
    promoted = [e for e in await _events(app, f"loop.model.promoted.{config}")]
    evaluations = {e.candidate: e for e in await _events(app, f"loop.eval.completed.{config}")}
    trainings = [
        e
        for e in await _events(app, f"loop.training.completed.{config}")
        if isinstance(e, TrainingCompleted)
    ]
    failures = [
        e.reason
        for e in await _events(app, f"loop.training.failed.{config}")
        if isinstance(e, TrainingFailed)
    ]
    best = promoted[-1].model_id if promoted else None
    eval_games, eval_seconds = await _evaluation_throughput(app, config)
    rates = _rates(evaluations.get(best) if best else None)
    games = app.projection_runner("games", db_path=":memory:")
    await games.catch_up()
    counts = games.state.get("games_configs", config) or {}
    selfplay_games = counts.get("selfplay", 0) or 0
    return {
        "config": config,
        "seconds": round(seconds, 1),
        "generations": len(promoted),
        "best_model": best,
        "gating_vs_random": rates["random"],
        "gating_vs_heuristic": rates["heuristic"],
        "trainings": len(trainings),
        "training_failures": failures,
        "training_samples_per_s": round(sum(t.samples_per_s for t in trainings) / len(trainings), 1)
        if trainings
        else None,
        "evaluations": len(evaluations),
        "evaluation_games_per_s": round(eval_games / eval_seconds, 3) if eval_seconds else None,
        "selfplay_games": selfplay_games,
        "selfplay_games_per_s": round(selfplay_games / seconds, 3),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
    }


async def _final_evaluation(app: App, config: str, games: int) -> dict[str, Any]:
    """The final best model (search, no noise) against each baseline, seats alternating."""
    app.start_views(["registry"], ":memory:")
    await app.refresh("registry")
    model = best_model(app.runners["registry"].state, config)
    if model is None:
        return {"win_rate_vs_random": None, "win_rate_vs_heuristic": None, "final_games": 0}
    settings = app.settings.loop
    evaluator, sha = await load_network(app.store, model, checkpoint_cache(app.settings.state_dir))
    search = search_settings(settings, "evaluation")
    candidate = model_agent(model.model_id, evaluator, search, sha256=sha)
    game_config = GameConfig.parse(config)
    result: dict[str, Any] = {"final_games": games}
    for baseline in ("random", "heuristic"):
        opponent = tier_agent(baseline, settings)
        seatings = [_seating(candidate, opponent, game_config.num_players, i) for i in range(games)]
        played = await asyncio.to_thread(
            play_games,
            game_config,
            seatings,
            list(range(10_000, 10_000 + games)),
            max_moves=settings.selfplay.max_moves,
            adjudication=settings.selfplay.adjudication,
        )
        score = sum(
            _score(game.ranking, seats.index(candidate))
            for game, seats in zip(played, seatings, strict=True)
        )
        result[f"win_rate_vs_{baseline}"] = round(score / games, 4)
    return result


def _seating(candidate: Any, opponent: Any, players: int, index: int) -> list[Any]:
    seats = [opponent] * players
    seats[index % players] = candidate
    return seats


def _score(ranking: list[int], seat: int) -> float:
    """1 for a sole first place, 1/k for a first place shared by k, else 0."""
    if ranking[seat] != 1:
        return 0.0
    return 1.0 / sum(1 for rank in ranking if rank == 1)


async def _evaluation_throughput(app: App, config: str) -> tuple[int, float]:
    """Gating games played and the seconds between each EvaluationStarted and its summary."""
    started = {e.evaluation_id: e for e in await _events(app, f"loop.eval.started.{config}")}
    games, seconds = 0, 0.0
    for done in await _events(app, f"loop.eval.completed.{config}"):
        begin = started.get(done.evaluation_id)
        if begin is not None:
            games += sum(r.games for r in done.results)
            seconds += (done.occurred_at - begin.occurred_at).total_seconds()
    return games, seconds


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    print(
        f"{report['generations']} generation(s) promoted in {report['seconds']} s; best "
        f"{report['best_model']}: final {report['final_games']} games each vs random "
        f"{_pct(report['win_rate_vs_random'])}, vs heuristic {_pct(report['win_rate_vs_heuristic'])}; "
        f"{report['trainings']} trainings at {report['training_samples_per_s']} samples/s; selfplay "
        f"{report['selfplay_games']} games ({report['selfplay_games_per_s']} games/s); "
        f"evaluation {report['evaluation_games_per_s']} games/s; machine {report['machine']}"
    )
    if as_json:
        print(json.dumps(report))
