"""`ringloop bench learning`: run the whole loop on one config for M minutes; report each promoted generation's win rates against random and heuristic.

Everything runs in this process against a fresh embedded nats-server in a temporary state
folder: every projection, every handler of ops.app (data gate, trainer, evaluator, elo
rater, promoter, curriculum, feedback, coordinator) and one selfplay worker. The win
rates are the promoted model's scores in its gating evaluation (the EvaluationCompleted
the promoter decided on). Not a test: figures depend on the machine (recorded in the
output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from events import (
    LOG_STREAM,
    EvaluationCompleted,
    ModelPromoted,
    TrainingCompleted,
    TrainingFailed,
)
from handlers import selfplay
from handlers.runtime import HandlerRuntime
from ops.app import HANDLERS, PROJECTIONS, App
from ops.logging import configure_logging
from ops.settings import load_settings
from ops.wiring_play import settings_of, stop_daemons

NAME = "learning"
HELP = "run the loop on one config for some minutes; win rates of each promoted generation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="square8_2p")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--preset", choices=["tiny", "default"], default="tiny")
    parser.add_argument("--selfplay-workers", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="state folder to keep (default: a temp one)")


def run(args: argparse.Namespace) -> int:
    configure_logging("warning")
    if args.minutes <= 0:
        print("ringloop bench learning: --minutes must be > 0", file=sys.stderr)
        return 2
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_bench(args, args.keep))
    with tempfile.TemporaryDirectory(prefix="ringloop-bench-learning-") as state:
        return asyncio.run(_bench(args, Path(state)))


async def _bench(args: argparse.Namespace, state: Path) -> int:
    loop = {"preset": args.preset, "configs": [args.config]}
    app = await App.open(load_settings(None, state_dir=str(state), loop=loop))
    try:
        report = await _run_loop(app, args)
    finally:
        await app.close()
    _print_report(report, args.json)
    return 0


async def _run_loop(app: App, args: argparse.Namespace) -> dict[str, Any]:
    for name in PROJECTIONS:
        app.projection_runner(name).start()
    names = [name for name in sorted(HANDLERS) if name != selfplay.NAME]
    runtimes = [HandlerRuntime(app.handler_spec(name), app.store) for name in names]
    tasks = [asyncio.create_task(_supervised(r)) for r in runtimes]
    stop = asyncio.Event()
    settings = settings_of(app)
    workers = [
        asyncio.create_task(selfplay.run_worker(app.store, settings, app.settings.state_dir, stop))
        for _ in range(args.selfplay_workers)
    ]
    started = time.perf_counter()
    seen: set[str] = set()
    deadline = started + args.minutes * 60
    print(f"bench learning: {args.config}, preset {args.preset}, {args.minutes} min", flush=True)
    while time.perf_counter() < deadline:
        await asyncio.sleep(min(5.0, max(0.0, deadline - time.perf_counter())))
        for line in await _new_generations(app, args.config, seen, started):
            print(line, flush=True)
    stop.set()
    played = await asyncio.gather(*workers)
    for runtime in runtimes:
        runtime.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    await stop_daemons()
    return await _summary(app, args.config, played, time.perf_counter() - started)


async def _supervised(runtime: HandlerRuntime) -> None:
    """Restart a runtime after nats-py's stray fetch TimeoutError (see the play-stage tests)."""
    while True:
        try:
            await runtime.run()
            return
        except TimeoutError:
            continue


async def _events(app: App, subject: str) -> list[Any]:
    return [s.event for s in await app.store.read_all(LOG_STREAM, subject)]


def _rates(evaluation: EvaluationCompleted | None) -> dict[str, float | None]:
    scores = {r.opponent: r.score for r in evaluation.results} if evaluation else {}
    return {"random": scores.get("random"), "heuristic": scores.get("heuristic")}


async def _new_generations(app: App, config: str, seen: set[str], started: float) -> list[str]:
    evaluations = {e.candidate: e for e in await _events(app, f"loop.eval.completed.{config}")}
    lines = []
    for promoted in await _events(app, f"loop.model.promoted.{config}"):
        if not isinstance(promoted, ModelPromoted) or promoted.model_id in seen:
            continue
        seen.add(promoted.model_id)
        rates = _rates(evaluations.get(promoted.model_id))
        lines.append(
            f"  t={time.perf_counter() - started:7.1f}s generation {len(seen)}: "
            f"{promoted.model_id} vs random {_pct(rates['random'])}, "
            f"vs heuristic {_pct(rates['heuristic'])}"
        )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


async def _summary(
    app: App, config: str, workers: list[selfplay.SelfplayWorker], seconds: float
) -> dict[str, Any]:
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
    games = sum(w.games for w in workers)
    play_seconds = sum(w.seconds for w in workers) or 1e-9
    return {
        "config": config,
        "seconds": round(seconds, 1),
        "generations": len(promoted),
        "best_model": best,
        "win_rate_vs_random": rates["random"],
        "win_rate_vs_heuristic": rates["heuristic"],
        "trainings": len(trainings),
        "training_failures": failures,
        "training_samples_per_s": round(sum(t.samples_per_s for t in trainings) / len(trainings), 1)
        if trainings
        else None,
        "evaluations": len(evaluations),
        "evaluation_games_per_s": round(eval_games / eval_seconds, 3) if eval_seconds else None,
        "selfplay_games": games,
        "selfplay_games_per_s": round(games / play_seconds * len(workers), 3),
        "selfplay_moves_per_s": round(
            sum(w.moves for w in workers) / play_seconds * len(workers), 1
        ),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
    }


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
        f"{report['best_model']}: vs random {_pct(report['win_rate_vs_random'])}, vs heuristic "
        f"{_pct(report['win_rate_vs_heuristic'])}; {report['trainings']} trainings at "
        f"{report['training_samples_per_s']} samples/s; selfplay "
        f"{report['selfplay_games_per_s']} games/s, {report['selfplay_moves_per_s']} moves/s; "
        f"evaluation {report['evaluation_games_per_s']} games/s"
    )
    if as_json:
        print(json.dumps(report))
