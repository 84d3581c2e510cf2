"""Handler processes killed with SIGKILL mid-event: the input is redelivered, output once.

A synthetic echo handler, and a real `ringloop run elo-rater` killed while rating a queue of
matches (the trainer's crash test, `ringloop run trainer` killed mid-training, is in
test_play_stages.py: it needs that module's selfplay games)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.rating import DEFAULT_RATING, elo_update
from events import LOG_STREAM, DaemonHeartbeat, EloUpdated, MatchCompleted, MatchParticipant
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.server import EmbeddedServer
from tests.conftest import repo_root

SCRIPT = Path(__file__).parent / "procs" / "slow_echo_handler.py"


def spawn(server: EmbeddedServer, marker: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(SCRIPT), server.url, str(marker), *extra])


async def wait_until(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not await predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def echo_outputs(app: App, input_id: str) -> list[DaemonHeartbeat]:
    stored = await app.store.read_all(LOG_STREAM, "loop.system.heartbeat")
    return [
        s.event for s in stored if s.event.causation_id == input_id and s.event.daemon == "echo-out"
    ]  # type: ignore[attr-defined, misc]


@pytest.mark.parametrize("crash_point", ["mid-event", "after-append-before-ack"])
async def test_sigkilled_handler_redelivers_and_outputs_once(
    app: App, nats_server: EmbeddedServer, tmp_path: Path, crash_point: str
) -> None:
    marker = tmp_path / "marker"
    marker.mkdir()
    extra = ("crash",) if crash_point == "after-append-before-ack" else ()
    first = spawn(nats_server, marker, *extra)
    incoming = DaemonHeartbeat(daemon="echo-in")
    await app.store.append(incoming)

    async def started() -> bool:
        return (marker / f"started-{first.pid}").exists()

    await wait_until(started)
    if crash_point == "mid-event":
        first.send_signal(signal.SIGKILL)
    await asyncio.to_thread(first.wait, 15)
    assert first.returncode == -signal.SIGKILL
    assert len(await echo_outputs(app, incoming.event_id)) == (1 if extra else 0)

    second = spawn(nats_server, marker)
    try:

        async def redelivered() -> bool:
            return (marker / f"started-{second.pid}").exists()

        await wait_until(redelivered)  # the input came back after ack_wait

        async def answered() -> bool:
            return len(await echo_outputs(app, incoming.event_id)) >= 1

        await wait_until(answered)

        async def drained() -> bool:  # its own output (a heartbeat too) consumed and acked
            info = await app.store.js.consumer_info(LOG_STREAM, "slow-echo")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_until(drained)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 15)
    assert second.returncode == 0  # SIGTERM drained cleanly
    outputs = await echo_outputs(app, incoming.event_id)
    assert len(outputs) == 1
    info = await app.store.js.consumer_info(LOG_STREAM, "slow-echo")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_sigterm_mid_event_finishes_the_event_then_exits(
    app: App, nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.mkdir()
    process = spawn(nats_server, marker)
    incoming = DaemonHeartbeat(daemon="echo-in")
    await app.store.append(incoming)

    async def started() -> bool:
        return (marker / f"started-{process.pid}").exists()

    await wait_until(started)
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 15)
    assert process.returncode == 0
    assert len(await echo_outputs(app, incoming.event_id)) == 1
    info = await app.store.js.consumer_info(LOG_STREAM, "slow-echo")
    assert info.num_ack_pending == 0  # acked before exit; only its own output is pending


# ---------------------------------------------------------------- a real stage: the elo-rater

RATER_ACK_WAIT_S = 3.0  # the killed process's unacknowledged matches come back this soon


def start_rater(app: App, state: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`ringloop run elo-rater` against the module's server; its JSON log goes to a file."""
    state.mkdir()
    log = state / "rater.log"
    command = [sys.executable, "-m", "ops", "run", "elo-rater", "--nats", str(app.settings.nats.url),
               "--state-dir", str(state), "--log-level", "info"]  # fmt: skip
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=repo_root(), stderr=stderr)
    return process, log


def matches(config: str, count: int) -> list[MatchCompleted]:
    rng = random.Random(11)
    players = [f"rater-crash-{i}" for i in range(6)]
    out = []
    for index in range(count):
        pair = rng.sample(players, 2)
        ranks = [1, 2] if rng.random() < 0.8 else [1, 1]
        participants = [
            MatchParticipant(participant_id=p, rank=r) for p, r in zip(pair, ranks, strict=True)
        ]
        out.append(MatchCompleted(config=config, match_id=f"crash-{index}", participants=participants))  # fmt: skip
    return out


async def test_sigkilled_elo_rater_process_rates_every_match_exactly_once(
    app: App, tmp_path: Path
) -> None:
    config, count = "hex8_3p", 120
    spec = app.handler_spec("elo-rater")
    subject = f"loop.elo.updated.{config}"
    # the rater's own durable consumer, with a short ack_wait so the test need not wait 30 s
    await HandlerRuntime(
        dataclasses.replace(spec, ack_wait=RATER_ACK_WAIT_S), app.store
    ).ensure_consumer()
    first, first_log = start_rater(app, tmp_path / "one")
    try:

        async def listening() -> bool:
            assert first.poll() is None, first_log.read_text()[-3000:]
            return "handler_started" in first_log.read_text()

        await wait_until(listening, timeout=60)
        played = matches(config, count)
        await app.store.append_many(played)

        async def rating() -> bool:
            return await app.store.last_seq(LOG_STREAM, subject) > 0

        await wait_until(rating, timeout=60)
    finally:
        first.kill()  # SIGKILL mid-queue: no drain, the matches in hand never acknowledged
        await asyncio.to_thread(first.wait, 15)
    assert first.returncode == -signal.SIGKILL
    left = await app.store.js.consumer_info(LOG_STREAM, spec.name)
    rated_by_first = len(await app.store.read_all(LOG_STREAM, subject))
    assert rated_by_first < count and left.num_pending + left.num_ack_pending > 0  # killed mid-work

    second, second_log = start_rater(app, tmp_path / "two")
    try:

        async def all_rated() -> bool:
            assert second.poll() is None, second_log.read_text()[-3000:]
            info = await app.store.js.consumer_info(LOG_STREAM, spec.name)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await wait_until(all_rated, timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 30)
    assert second.returncode == 0, second_log.read_text()[-3000:]
    updates = [s.event for s in await app.store.read_all(LOG_STREAM, subject)]
    assert all(isinstance(u, EloUpdated) for u in updates)
    assert sorted(u.match_id for u in updates) == sorted(m.match_id for m in played)  # type: ignore[attr-defined]
    # no update lost or applied twice: each starts from the ratings the previous ones left
    ranks = {m.match_id: {p.participant_id: p.rank for p in m.participants} for m in played}
    ratings: dict[str, float] = {}
    for update in updates:
        before = {c.participant_id: c.before for c in update.changes}  # type: ignore[attr-defined]
        match_ranks = ranks[update.match_id]  # type: ignore[attr-defined]
        assert before == {p: ratings.get(p, DEFAULT_RATING) for p in match_ranks}
        after = elo_update(before, match_ranks)
        assert {c.participant_id: c.after for c in update.changes} == after  # type: ignore[attr-defined]
        ratings.update(after)
