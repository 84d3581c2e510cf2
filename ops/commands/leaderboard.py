"""`ringloop leaderboard`: a config's ratings, sorted by the full-history ML fit, the current best marked.

The read model is brought to the current end of the log first: the command catches up the
state folder's projections.db itself, unless a `ringloop up` serves that state folder (its
embedded server's nats.url answers), which owns the file; then the command folds the
newest events into an in-memory copy instead and leaves the file alone.

Rows are ordered by the maximum-likelihood rating (Bradley-Terry / Plackett-Luce over every
game at once, anchored on the pinned baselines); Elo is shown beside it. Where the two
disagree by more than DISAGREEMENT_ELO points a note says why (Elo is the path of K=32
updates in game order against pinned baselines; ML weighs every game equally). Each model
row shows its registry state (best, promoted, rejected, candidate), and the footer says when
the ratings lag the log (MatchCompleted the elo-rater has not rated yet).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.rating import DEFAULT_RATING, K_FACTOR
from events.streams import LOG_STREAM
from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app
from ops.elo_service import combined_leaderboard, config_name, current_elo_runner

DISAGREEMENT_ELO = 100.0  # |Elo - ML| beyond which a row gets a note

COLUMNS = (
    ("#", "rank", ">3"),
    ("", "mark", "<1"),
    ("participant", "participant", "<"),
    ("ml", "ml_rating", ">7"),
    ("95% interval", "interval", ">17"),
    ("elo", "elo", ">7"),
    ("games", "games", ">6"),
    ("w", "wins", ">5"),
    ("l", "losses", ">5"),
    ("d", "draws", ">5"),
    ("registry", "registry", "<"),
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
        await app.store.js.stream_info(LOG_STREAM)  # not set up: one line, no failing views
        runner = await current_elo_runner(app)
        states = await registry_states(app, config)
        rows = ranked(combined_leaderboard(runner.db, config), states)
        lag = await rating_lag(app, runner.db, config)
        rows = rows[: args.limit] if args.limit is not None else rows
        print(json.dumps(rows, indent=2) if args.json else render(config, rows, lag))
        return 0

    return run_with_app(args, body, setup=False)  # read-only: never changes a stream


async def registry_states(app: App, config: str) -> dict[str, str]:
    """Rating key -> registry state of each model of the config ("best" for the current one)."""
    from events.keys import rating_key
    from projections.registry import MODELS, current_best

    app.start_views(["registry"], ":memory:")
    await app.refresh("registry")
    registry = app.runners["registry"].state
    best = current_best(registry, config)
    states = {}
    for row in registry.rows(MODELS.name):
        if row["config"] != config:
            continue
        sha = (row.get("artifact") or {}).get("sha256")
        state = "best" if best and row["model_id"] == best["model_id"] else row["state"]
        states[rating_key(row["model_id"], sha)] = states[row["model_id"]] = state
    return states


async def rating_lag(app: App, db: Any, config: str) -> int:
    """MatchCompleted of the config on the log that the Elo read model has not rated yet."""

    subject = f"loop.match.completed.{config}"
    info = await app.store.js.stream_info(LOG_STREAM, subjects_filter=subject)
    on_log = sum((info.state.subjects or {}).values())
    rated = next(iter(db.query("select matches_rated from elo_config_state where config = ?",
                               [config])), {"matches_rated": 0})["matches_rated"]  # fmt: skip
    return max(0, on_log - (rated or 0))


def ranked(rows: list[dict[str, Any]], states: dict[str, str]) -> list[dict[str, Any]]:
    """By ML rating (unfitted last), then Elo; each row with its registry state and a note."""
    out = []
    for row in rows:
        state = states.get(row["key"]) or states.get(row["participant"])
        note = disagreement(row)
        out.append({**row, "registry": state, "best": state == "best", "note": note})
    out.sort(key=lambda r: (r["ml_rating"] is None, -(r["ml_rating"] or 0.0), -r["elo"]))
    return out


def disagreement(row: dict[str, Any]) -> str | None:
    elo, ml = row.get("elo"), row.get("ml_rating")
    if elo is None or ml is None or abs(elo - ml) <= DISAGREEMENT_ELO:
        return None
    low, high = row.get("ml_low"), row.get("ml_high")
    inside = low is not None and high is not None and low <= elo <= high
    return (
        f"Elo {elo:.0f} vs ML {ml:.0f}: Elo starts every participant at {DEFAULT_RATING:.0f} and "
        f"moves at most {K_FACTOR:.0f} points a game, so after {row['games']} games it still "
        "carries its start and the order the games came in; ML fits every game at once, "
        "anchored on the pinned baselines; "
        + ("Elo is still inside the ML interval" if inside else "trust the ML rating")
    )


def render(config: str, rows: list[dict[str, Any]], lag: int = 0) -> str:
    """A plain-text table, then the notes and whether the ratings lag the log."""
    footer = _footer(rows, lag)
    if not rows:
        return f"{config}: no rated participants yet" + (f"\n{footer}" if footer else "")
    cells = [_cells(rank, row) for rank, row in enumerate(rows, 1)]
    width = max(len("participant"), *(len(c["participant"]) for c in cells))
    lines = [_line({key: title for title, key, _ in COLUMNS}, width)]
    lines += [_line(c, width) for c in cells]
    head = f"{config} ({len(rows)} rated; sorted by ML rating; * = current best)"
    return head + "\n" + "\n".join(lines) + (f"\n{footer}" if footer else "")


def _footer(rows: list[dict[str, Any]], lag: int) -> str:
    notes = [f"  {r['participant']}: {r['note']}" for r in rows if r.get("note")]
    parts = ["notes:", *notes] if notes else []
    if lag:
        parts.append(f"behind: {lag} MatchCompleted of this config are on the log but not yet "
                     "rated (is an elo-rater running? `ringloop up` or `ringloop run elo-rater`)")  # fmt: skip
    return "\n".join(parts)


def _cells(rank: int, row: dict[str, Any]) -> dict[str, str]:
    cells = {key: "" if row.get(key) is None else str(row[key]) for _, key, _ in COLUMNS}
    cells["rank"] = str(rank)
    cells["mark"] = "*" if row.get("best") else ""
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
