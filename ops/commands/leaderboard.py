"""`ringloop leaderboard`: a config's Elo and full-history ML ratings, read from the Elo projection.

The read model is brought to the current end of the log first: the command catches up the
state folder's projections.db itself, unless a `ringloop up` serves that state folder (its
embedded server's nats.url answers), which owns the file; then the command folds the
newest events into an in-memory copy instead and leaves the file alone.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app
from ops.elo_service import combined_leaderboard, config_name, current_elo_runner

COLUMNS = (
    ("#", "rank", ">3"),
    ("participant", "participant", "<"),
    ("elo", "elo", ">7"),
    ("ml", "ml_rating", ">7"),
    ("95% interval", "interval", ">17"),
    ("games", "games", ">6"),
    ("w", "wins", ">5"),
    ("l", "losses", ">5"),
    ("d", "draws", ">5"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("leaderboard", help="Elo and ML ratings of one config")
    parser.add_argument("--config", required=True, help="board type x players, e.g. square8_2p")
    parser.add_argument("--limit", type=int, help="show the first N rows")
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        config = config_name(config=args.config)
        runner = await current_elo_runner(app)
        rows = combined_leaderboard(runner.db, config, args.limit)
        print(json.dumps(rows, indent=2) if args.json else render(config, rows))
        return 0

    return run_with_app(args, body, setup=False)  # read-only: never changes a stream


def render(config: str, rows: list[dict[str, Any]]) -> str:
    """A plain-text table: rank, name, Elo, ML rating with its interval, results."""
    if not rows:
        return f"{config}: no rated participants yet"
    cells = [_cells(rank, row) for rank, row in enumerate(rows, 1)]
    width = max(len("participant"), *(len(c["participant"]) for c in cells))
    lines = [_line({key: title for title, key, _ in COLUMNS}, width)]
    lines += [_line(c, width) for c in cells]
    return f"{config} ({len(rows)} rated)\n" + "\n".join(lines)


def _cells(rank: int, row: dict[str, Any]) -> dict[str, str]:
    cells = {key: "" if row.get(key) is None else str(row[key]) for _, key, _ in COLUMNS}
    cells["rank"] = str(rank)
    for key in ("elo", "ml_rating"):
        cells[key] = "-" if row.get(key) is None else f"{row[key]:.0f}"
    low, high = row.get("ml_low"), row.get("ml_high")
    cells["interval"] = "-" if low is None or high is None else f"[{low:.0f}, {high:.0f}]"
    return cells


def _line(cells: dict[str, str], width: int) -> str:
    parts = []
    for _, key, align in COLUMNS:
        spec = f"<{width}" if key == "participant" else align
        parts.append(f"{cells[key]:{spec}}")
    return "  ".join(parts).rstrip()
