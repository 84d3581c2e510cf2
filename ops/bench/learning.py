"""`ringloop bench learning`: run the real loop for M minutes; report each promoted generation's
win rates and a final evaluation of the best model against random and heuristic.

It starts `ringloop up --profile <preset>` (selfplay, trainer and evaluator as child
processes, exactly as a user runs it) on a fresh state folder for the given minutes, stops
it (SIGTERM: it drains), then reads the log: per promoted generation, its gating scores;
and plays `--final-games` games of the final best model (with its search, no noise)
against random and heuristic, seats alternating; and the maximum-likelihood ratings (with
intervals) of the promoted generations over every match on the log, each beside its gate
score against its parent. `--report` redoes the report on a folder kept with `--keep`.
Not a test: figures depend on the machine (recorded in the output).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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
    MatchCompleted,
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
    parser.add_argument(
        "--report", action="store_true", help="only report on the run kept in --keep's folder"
    )


def run(args: argparse.Namespace) -> int:
    configure_logging("warning")
    if args.minutes <= 0 or args.final_games < 2:
        print("ringloop bench learning: --minutes must be > 0, --final-games ≥ 2", file=sys.stderr)
        return 2
    if args.report:
        if args.keep is None or not (args.keep / "settings.toml").is_file():
            where = "no --keep folder" if args.keep is None else f"no run kept in {args.keep}"
            print(f"ringloop bench learning --report: {where}", file=sys.stderr)
            return 2
        report = asyncio.run(_report(args, args.keep, None))
        _print_report(report, args.json)
        return 0
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _bench(args, args.keep)
    with tempfile.TemporaryDirectory(prefix="ringloop-bench-learning-") as state:
        return _bench(args, Path(state))


def _bench(args: argparse.Namespace, state: Path) -> int:
    # the preset in the file, so that the report reads the loop's own settings back from it
    text = f'[loop]\npreset = "{args.preset}"\nconfigs = ["{args.config}"]\n'
    if args.search:  # beside the preset, so the profile's other fields stay under it
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


async def _report(args: argparse.Namespace, state: Path, seconds: float | None) -> dict[str, Any]:
    """The report on the loop run in `state` (its own settings file: the final evaluation
    searches as the run's gate did); `seconds` None: the log's first to last event."""
    settings = load_settings(state / "settings.toml", state_dir=str(state))
    app = await App.open(settings)
    try:
        started = await _first_event_time(app)
        if seconds is None:
            seconds = await _log_seconds(app, started)
        for line in await _generations(app, args.config, started):
            print(line, flush=True)
        summary = await _summary(app, args.config, seconds)
        summary["search"] = settings.loop.selfplay.search
        summary["ml_ratings"] = await _ml_ratings(app, args.config)
        for line in _ml_table(summary["ml_ratings"]):
            print(line, flush=True)
        rows = [r for r in summary["ml_ratings"] if r["generation"]]
        summary["ml_rising"] = rising(rows)
        summary["ml_rising_kept"] = rising([r for r in rows if not r["rolled_back"]])
        summary["ml_steps_up"], summary["ml_steps"] = steps_up(rows), max(len(rows) - 1, 0)
        summary["rolled_back"] = sum(r["rolled_back"] for r in rows)
        summary["each_beat_parent"] = each_beat_parent(rows)
        summary.update(await _final_evaluation(app, args.config, args.final_games))
        return summary
    finally:
        await app.close()


async def _first_event_time(app: App) -> Any:
    first = await app.store.read_all(LOG_STREAM, "loop.>", end_seq=1)
    return first[0].event.occurred_at if first else None


async def _log_seconds(app: App, started: Any) -> float:
    last_seq = await app.store.last_seq(LOG_STREAM)
    last = await app.store.read_all(LOG_STREAM, "loop.>", start_seq=last_seq)
    if started is None or not last:
        return 0.0
    return float((last[-1].event.occurred_at - started).total_seconds())


async def _ml_ratings(app: App, config: str) -> list[dict[str, Any]]:
    """The full-history maximum-likelihood fit over every match of the config on the log
    (rejected candidates included), for the baselines and each promoted generation in
    order, with each generation's gate score against its parent."""
    from engine.rating import ml_ratings

    matches = [
        {p.participant_id: p.rank for p in e.participants}
        for e in await _events(app, f"loop.match.completed.{config}")
        if isinstance(e, MatchCompleted)
    ]
    fits = ml_ratings(matches) if matches else {}
    evaluations = {e.candidate: e for e in await _events(app, f"loop.eval.completed.{config}")}
    rolled_back = {e.model_id for e in await _events(app, f"loop.model.rolled_back.{config}")}
    rows: list[dict[str, Any]] = []

    def row(name: str, generation: int, gate: float | None) -> None:
        fit = fits.get(name)
        if fit is not None:
            rows.append({"model": name, "generation": generation, "rating": round(fit.rating, 1),
                         "low": round(fit.low, 1), "high": round(fit.high, 1),
                         "games": fit.games, "gate_vs_parent": gate,
                         "rolled_back": name in rolled_back})  # fmt: skip

    for baseline in ("random", "heuristic"):
        row(baseline, 0, None)
    promoted = [e for e in await _events(app, f"loop.model.promoted.{config}")]
    for index, event in enumerate(p for p in promoted if isinstance(p, ModelPromoted)):
        evaluation = evaluations.get(event.model_id)
        scores = {r.opponent: r.score for r in evaluation.results} if evaluation else {}
        row(event.model_id, index + 1, scores.get(event.previous_best or ""))
    return rows


def rising(rows: list[dict[str, Any]]) -> bool:
    """Each row's ML rating above the one before it."""
    return steps_up(rows) == max(len(rows) - 1, 0)


def steps_up(rows: list[dict[str, Any]]) -> int:
    """How many rows' ML ratings are above the row before."""
    return sum(later["rating"] > earlier["rating"] for earlier, later in itertools.pairwise(rows))


def each_beat_parent(rows: list[dict[str, Any]]) -> bool:
    """Every promoted generation after the first scored over half against the model it
    replaced; a generation with no gate games against that model (judged on games against
    another) has not shown it."""
    return all(
        r["gate_vs_parent"] is not None and r["gate_vs_parent"] > 0.5
        for r in rows
        if r["generation"] > 1
    )


def _ml_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["  ML rating (95% interval, games) over every match on the log; gate vs parent"]
    for r in rows:
        who = (
            f"gen {r['generation']:>2} {r['model']}" if r["generation"] else f"       {r['model']}"
        )
        if r["gate_vs_parent"] is not None:
            gate = f"  gate vs parent {_pct(r['gate_vs_parent'])}"
        else:
            gate = "  no gate games against its parent" if r["generation"] > 1 else ""
        if r.get("rolled_back"):
            gate += "  (rolled back)"
        lines.append(
            f"  {who:<34} {r['rating']:7.1f}  [{r['low']:7.1f}, {r['high']:7.1f}]  "
            f"{r['games']:>5} games{gate}"
        )
    return lines


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
    return "n/a" if value is None else f"{100 * value:.4g}%"  # 98.75%, not a rounded 99%


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
        f"evaluation {report['evaluation_games_per_s']} games/s; search {report['search']}; "
        f"ML rating rising each generation: {report['ml_rising']} ({report['ml_steps_up']} of "
        f"{report['ml_steps']} steps up; over the "
        f"{report['generations'] - report['rolled_back']} not rolled back: "
        f"{report['ml_rising_kept']}); each promoted generation "
        f"beat its parent at the gate: {report['each_beat_parent']}; machine {report['machine']}"
    )
    if as_json:
        print(json.dumps(report))
