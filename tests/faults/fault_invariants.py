"""What every fault test asserts on the log afterwards: nothing acknowledged lost, every game,
training, match, rating update and decision exactly once, and `replay --check` equal."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from events import GAMES_STREAM, LOG_STREAM
from ops.app import App
from ops.replay import check
from projections.eventstore import StoredEvent


@dataclass
class Figures:
    """What a fault test measured, printed for the report (pytest -s shows it)."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def show(self) -> None:
        print(
            f"\nFAULT FIGURES {self.name}: " + ", ".join(f"{k}={v}" for k, v in self.values.items())
        )


def duplicates(counter: Counter[Any]) -> dict[Any, int]:
    return {key: count for key, count in counter.items() if count > 1}


async def read_log(app: App) -> tuple[list[StoredEvent], list[StoredEvent]]:
    """Every event of the log and of the games stream (strictly decoded: a malformed one in
    either would fail here, so the fuzz test reads raw instead)."""
    log = await app.store.read_all(LOG_STREAM, "loop.>")
    games = await app.store.read_all(GAMES_STREAM, "games.>")
    return log, games


def assert_exactly_once(log: list[StoredEvent], games: list[StoredEvent]) -> dict[str, int]:
    """No event twice, and one game / training / match / rating update / decision per key.
    Returns how many of each were checked."""
    events = [s.event for s in (*log, *games)]
    assert not duplicates(Counter(e.event_id for e in events)), "an event id appears twice"
    keys: dict[str, Counter[Any]] = {
        "games": Counter(getattr(e, "game_id", None) for e in events if e.type == "game.completed"),
        "trainings": Counter(
            getattr(e, "training_id", None) for e in events if e.type == "training.completed"
        ),
        "matches": Counter(
            getattr(e, "match_id", None) for e in events if e.type == "match.completed"
        ),
        "rating_updates": Counter(
            getattr(e, "match_id", None) for e in events if e.type == "elo.updated"
        ),
        "decisions": Counter(
            getattr(e, "evaluation_id", None) or getattr(e, "model_id", None)
            for e in events
            if e.type in ("model.promoted", "model.rejected")
        ),
    }
    for name, counter in keys.items():
        assert not duplicates(counter), f"{name} more than once: {duplicates(counter)}"
    rated = set(keys["rating_updates"])
    unrated = [m for m in keys["matches"] if m not in rated]
    assert not unrated, f"matches without a rating update: {unrated[:5]}"
    return {"events_checked": len(events), **{k: len(v) for k, v in keys.items()}}


def assert_nothing_lost(log: list[StoredEvent], acknowledged: set[str]) -> None:
    """Every append the server acknowledged is in the log."""
    present = {s.event.event_id for s in log}
    lost = acknowledged - present
    assert not lost, f"{len(lost)} acknowledged events lost, e.g. {sorted(lost)[:3]}"


async def assert_replay_equal(app: App, names: list[str]) -> None:
    problems = await check(app, names)
    assert problems == [], problems[:5]


async def wait_until(predicate: Any, timeout: float, what: str, every: float = 0.1) -> float:
    """Poll an (async) predicate until true; returns the seconds it took."""
    began = time.monotonic()
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(every)


async def consumers_drained(app: App, stream: str, names: list[str]) -> bool:
    """Whether each named durable consumer has nothing pending or unacknowledged."""
    for name in names:
        info = await app.store.js.consumer_info(stream, name)
        if info.num_pending or info.num_ack_pending:
            return False
    return True
