"""Rebuild read models from sequence 1 (optionally up to a sequence or time) and compare."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ops.app import App
from ops.wiring import PROJECTIONS
from projections.runner import ProjectionRunner, checkpoint, load_state, open_db
from projections.tables import Tables


@dataclass(frozen=True)
class Rebuilt:
    name: str
    position: int
    state: Tables


async def rebuild(
    app: App,
    names: list[str],
    out: Path | str,
    *,
    until_seq: int | None = None,
    until_time: datetime | None = None,
) -> list[Rebuilt]:
    """Fold each projection from sequence 1 into the fresh database `out`."""
    if str(out) != ":memory:" and Path(out).exists():
        raise FileExistsError(f"replay target {str(out)!r} exists; give a fresh file")
    db = open_db(out)
    results = []
    for name in names:
        runner = ProjectionRunner(_projection(name), app.store, db)
        position = await runner.catch_up(until_seq=until_seq, until_time=until_time)
        results.append(Rebuilt(name, position, runner.state))
    return results


def live_state(db_path: Path | str, name: str) -> tuple[int, Tables]:
    """The live read model as stored, with its checkpoint, read in one transaction."""
    db = open_db(db_path)
    with db.atomic():  # one read transaction: rows and checkpoint agree
        position = checkpoint(db, name)
        projection = _projection(name)
        # never folded here: the fold's initial state (its tables may not exist yet)
        state = load_state(db, projection) if position else projection.initial()
    return position, state


async def check(app: App, names: list[str]) -> list[str]:
    """Rebuild each projection to the live checkpoint; describe every difference."""
    differences = []
    for name in names:
        position, live = live_state(app.settings.projections_db, name)
        [rebuilt] = await rebuild(app, [name], ":memory:", until_seq=position)
        differences += diff_states(name, live.snapshot(), rebuilt.state.snapshot())
    return differences


def diff_states(
    name: str, live: dict[str, list[dict[str, Any]]], rebuilt: dict[str, list[dict[str, Any]]]
) -> list[str]:
    problems = []
    for table in sorted(set(live) | set(rebuilt)):
        live_rows, rebuilt_rows = live.get(table, []), rebuilt.get(table, [])
        if live_rows == rebuilt_rows:
            continue
        missing = [r for r in rebuilt_rows if r not in live_rows][:3]
        extra = [r for r in live_rows if r not in rebuilt_rows][:3]
        problems.append(
            f"{name}.{table}: live has {len(live_rows)} rows, rebuild has {len(rebuilt_rows)}; "
            f"only in rebuild: {missing}; only in live: {extra}"
        )
    return problems


def _projection(name: str):  # type: ignore[no-untyped-def]
    if name not in PROJECTIONS:
        raise ValueError(f"unknown projection {name!r}; known: {', '.join(sorted(PROJECTIONS))}")
    return PROJECTIONS[name]()
