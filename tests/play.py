"""Helpers for tests of the play stages: a selfplay worker over this process's views, game
ranges of what it appended, stages run in this process, waits on the log."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from events import GAMES_STREAM, LOG_STREAM, Event, GameRange
from events.streams import games_subject
from handlers.selfplay import SelfplayWorker
from handlers.settings import LoopSettings
from ops.app import App
from ops.wiring import LiveViews, run_stages

SELFPLAY_VIEWS = ["registry", "curriculum", "feedback"]


def worker(app: App, loop: LoopSettings | None = None, cache: Path | None = None) -> SelfplayWorker:
    """A selfplay worker playing in a thread, reading this process's registry, curriculum and
    feedback views."""
    loop = loop or app.settings.loop
    loop = loop.with_overrides(selfplay={"processes": 0})
    app.start_views(SELFPLAY_VIEWS, None)
    return SelfplayWorker(
        app.store, loop, LiveViews(app, SELFPLAY_VIEWS), cache or app.settings.state_dir / "cache"
    )


async def selfplay_range(app: App, config: str, batches: int = 1, seed: int = 3) -> GameRange:
    """Play ``batches`` selfplay batches of ``config``; the GameRange of the games they stored
    (games appended before, by another test, are not in it)."""
    loop = app.settings.loop.with_overrides(configs=[config])
    player = worker(app, loop)
    rng = random.Random(seed)
    subject = games_subject(config, "selfplay")
    before = await app.store.last_seq(GAMES_STREAM, subject)
    for _ in range(batches):
        await player.batch(rng)
    stored = await app.store.read_all(GAMES_STREAM, subject, start_seq=before + 1)
    return GameRange(
        subject=subject, first_seq=stored[0].seq, last_seq=stored[-1].seq, count=len(stored)
    )


@contextlib.asynccontextmanager
async def stages_running(app: App, *names: str) -> AsyncIterator[None]:
    """Run the named stages in this process for the block; they drain at its end."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_stages(app, list(names), stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def events_on(app: App, subject: str, count: int = 1, timeout: float = 30) -> list[Event]:
    """Wait until ``subject`` holds at least ``count`` events; return them all."""

    async def poll() -> list[Event]:
        while True:
            stored = await app.store.read_all(LOG_STREAM, subject)
            if len(stored) >= count:
                return [s.event for s in stored]
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


def of(events: list[Event], **fields: Any) -> list[Event]:
    """The events whose fields have these values."""
    return [e for e in events if all(getattr(e, k, None) == v for k, v in fields.items())]
