"""Helpers for tests of the play stages: a selfplay worker over this process's views, game
ranges of what it appended, stages run in this process, a gating candidate, waits on the log."""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from events import GAMES_STREAM, LOG_STREAM, Event, GameRange, MatchCompleted, TrainingCompleted
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


async def candidate(app: App, config: str) -> TrainingCompleted:
    """A registered-looking candidate with real (untrained) weights in the Object Store: its
    TrainingCompleted opens a gate (`eval-gate-test`) once appended."""
    import torch

    from engine import GameConfig
    from engine.encoding import network_spec
    from engine.network import build_network, save_checkpoint
    from handlers.models import put_checkpoint

    spec = network_spec(GameConfig.parse(config), blocks=1, channels=8)
    torch.manual_seed(0)
    buffer = io.BytesIO()
    save_checkpoint(build_network(spec), spec, buffer)
    artifact = await put_checkpoint(app.store, f"{config}/gate-test.pt", buffer.getvalue())
    data = GameRange(subject=games_subject(config, "selfplay"), first_seq=1, last_seq=1, count=1)
    return TrainingCompleted(config=config, training_id="gate-test", model_id="gate-test-model",
                             artifact=artifact, losses=[], samples=1, samples_per_s=1.0,
                             duration_s=1.0, data=data, generation=1)  # fmt: skip


async def gate_matches(app: App, config: str, evaluation_id: str) -> list[MatchCompleted]:
    """The MatchCompleted of one gate so far."""
    stored = await app.store.read_all(LOG_STREAM, f"loop.match.completed.{config}")
    return [
        s.event
        for s in stored
        if isinstance(s.event, MatchCompleted) and s.event.context_id == evaluation_id
    ]
