"""`ringloop bench gate`: the promotion gate's power curve — how often a candidate of a given
true strength against the current best is promoted, per head-to-head mode, under a profile's
gate settings (game cap, SPRT hypotheses and error rates, Wilson threshold).

Each trial plays the head-to-head game by game, outcomes drawn from the Elo model (a
candidate d Elo stronger scores 1 / (1 + 10^(-d/400)) per game in expectation; `--draw-rate`
of the games drawn), and stops when the loop's SPRT decides or at the game cap, as
handlers.gating does; then handlers.promoter.head_to_head_verdict judges the same games under
every mode. The baselines' floors are left out (they are a separate gate). Promoting at
d ≤ 0 is promoting noise; not promoting at d > 0 is a lost generation. Not a test: a
simulation of the real decision code, seeded.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any, get_args

from engine.rating import expected_score
from engine.stats import sprt
from handlers.gating import HeadToHead
from handlers.profiles import PROFILES
from handlers.promoter import head_to_head_verdict
from handlers.settings import LoopSettings, PromotionSettings

NAME = "gate"
HELP = "the promotion gate's power curve: P(promote) by the candidate's true Elo, per mode"
MODES: tuple[str, ...] = get_args(PromotionSettings.model_fields["head_to_head"].annotation)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
    parser.add_argument("--trials", type=int, default=2000, help="gates simulated per strength")
    parser.add_argument(
        "--elo", default="-40,0,20,40,80,120,200", help="true Elo differences, comma-separated"
    )
    parser.add_argument("--draw-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    try:
        strengths = [float(part) for part in args.elo.split(",") if part.strip()]
    except ValueError:
        print(f"ringloop bench gate: --elo {args.elo!r} is not a list of numbers", file=sys.stderr)
        return 2
    if args.trials < 1 or not 0.0 <= args.draw_rate < 1.0 or not strengths:
        print(
            "ringloop bench gate: need --trials ≥ 1, 0 ≤ --draw-rate < 1 and one --elo value",
            file=sys.stderr,
        )
        return 2
    settings = {mode: LoopSettings.profile(args.profile, promotion={"head_to_head": mode})
                for mode in MODES}  # fmt: skip
    base = settings[MODES[0]]
    rng = random.Random(args.seed)
    rows = [_curve(settings, elo, args.trials, args.draw_rate, rng) for elo in strengths]
    test = base.evaluation.sprt
    print(
        f"bench gate: profile {args.profile}, at most {base.evaluation.games} games against "
        f"the best, SPRT elo0 {test.elo0:g} / elo1 {test.elo1:g}, alpha {test.alpha:g}, beta "
        f"{test.beta:g}; Wilson low > {base.promotion.wilson_threshold:g} at "
        f"{base.evaluation.confidence:g}; {args.trials} gates per strength, draws "
        f"{args.draw_rate:.0%} (current mode: {base.promotion.head_to_head!r})"
    )
    print("  true Elo   mean games  " + "  ".join(f"{mode:>15}" for mode in MODES))
    for row in rows:
        cells = "  ".join(f"{row['promoted'][mode]:>15.1%}" for mode in MODES)
        print(f"  {row['elo']:>+8g}   {row['mean_games']:>10.1f}  {cells}")
    if args.json:
        print(json.dumps({"profile": args.profile, "trials": args.trials, "rows": rows}))
    return 0


def _curve(
    settings: dict[str, LoopSettings], elo: float, trials: int, draw_rate: float, rng: random.Random
) -> dict[str, Any]:
    """P(promote) per mode over `trials` simulated gates of a candidate `elo` stronger."""
    base = next(iter(settings.values()))
    cap, test = base.evaluation.games, base.evaluation.sprt
    score = expected_score(elo, 0.0)
    win = max(0.0, score - draw_rate / 2)  # a draw is half a point: the expected score holds
    draw = min(draw_rate, 2 * score, 2 * (1 - score))
    promoted = dict.fromkeys(settings, 0)
    games = 0
    for _ in range(trials):
        wins = draws = losses = 0
        while wins + draws + losses < cap:
            roll = rng.random()
            if roll < win:
                wins += 1
            elif roll < win + draw:
                draws += 1
            else:
                losses += 1
            decided = sprt(wins, draws, losses, elo0=test.elo0, elo1=test.elo1,
                           alpha=test.alpha, beta=test.beta)  # fmt: skip
            if decided.decision != "continue":
                break
        games += wins + draws + losses
        result = HeadToHead("best", wins, draws, losses, cap).result(base)
        for mode, loop in settings.items():
            promoted[mode] += head_to_head_verdict(result, "best", loop).promote
    return {"elo": elo, "mean_games": round(games / trials, 1),
            "promoted": {mode: round(count / trials, 4) for mode, count in promoted.items()}}  # fmt: skip
