"""`ringloop tournament`: publish a tournament's games as work items, wait for the results, print a crosstable."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ops import auth
from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app
from ops.tournament import crosstable, run_tournament


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tournament", help="play models and tiers against each other; print a crosstable"
    )
    parser.add_argument("--config", required=True, help="e.g. square8_2p")
    parser.add_argument(
        "--participants",
        required=True,
        help="comma-separated model ids, 'best', tiers (random, heuristic, mcts-<N>, d1-d5) or "
        "AI-service URLs (http://host:port/?difficulty=5)",
    )
    parser.add_argument("--format", choices=["round-robin", "gauntlet"], default="round-robin")
    parser.add_argument("--games", type=int, default=2, help="games per pairing (seats rotate)")
    parser.add_argument("--local", action="store_true", help="also play the games in this process")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait")
    parser.add_argument("--json", action="store_true", help="end with one JSON object line")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.games < 1:
        raise SystemExit("ringloop tournament: --games must be >= 1")

    async def body(app: App) -> int:
        outcome = await run_tournament(
            app,
            args.config,
            [p.strip() for p in args.participants.split(",") if p.strip()],
            fmt=args.format,
            games=args.games,
            local=args.local,
            timeout=args.timeout,
        )
        print(f"tournament {outcome.tournament_id}: {len(outcome.matches)} games of {args.config}")
        print(crosstable(outcome, app.settings.loop.evaluation.confidence))
        if args.json:
            print(
                json.dumps(
                    {
                        "tournament_id": outcome.tournament_id,
                        "games": len(outcome.matches),
                        "participants": outcome.participants,
                    }
                )
            )
        return 0

    return run_with_app(args, body, start_server=args.local, role=auth.ADMIN_ROLE)
