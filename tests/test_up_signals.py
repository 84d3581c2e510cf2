"""`ringloop up` stopped as a user stops it, on the embedded default with `--profile tiny`:
Ctrl-C (SIGINT to its process group, as a terminal sends it) while the trainer works, then a
rerun on the same state folder stopped by SIGTERM. Each stop drains (the training in hand
finishes and is acknowledged, nothing is left unacknowledged, children and server end, exit
status 0) and the rerun resumes (nothing done twice, nothing lost: checked on the log).
A second `up` on a state folder that one serves exits 3 naming the first, disturbing nothing.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from events import GAMES_STREAM, LOG_STREAM
from events.streams import WORK_STREAM
from ops.app import App
from ops.settings import load_settings
from projections.eventstore import StoredEvent
from tests.test_loop_e2e import processes_naming

pytestmark = [
    pytest.mark.slow,  # a few tiny-profile processes (torch each): minutes on a loaded machine
    pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc"),
]

# selfplay, the data gate and the trainer are what a training needs; the other stages would
# only add processes (the gate after it is the e2e test's)
STAGES = "selfplay,data-gate,trainer"
WAIT_S = 420.0  # generous: children import torch on a loaded 2-core machine


def up(state: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "ops", "up", "--profile", "tiny", "--state-dir", str(state),
            "--progress-every", "0", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # its own process group, so that a Ctrl-C (SIGINT to the group) reaches it and its
    # children as a terminal's would, and nothing of this test
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)  # fmt: skip


class Bus:
    """The state folder's bus as the test reads it: the running `up`'s server, or (once `up`
    stopped) the same store opened by a server of this test's own. Leave it before stopping
    `up`: a connection to a server that went away cannot be closed cleanly."""

    def __init__(self, state: Path) -> None:
        self.settings = load_settings(None, state_dir=str(state))

    async def __aenter__(self) -> App:
        self.app = await App.open(self.settings, setup=False)
        return self.app

    async def __aexit__(self, *exc: object) -> None:
        await self.app.close()


async def log_of(app: App) -> list[StoredEvent]:
    return await app.store.read_all(LOG_STREAM, "loop.>")


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    process: subprocess.Popen[bytes],
    what: str,
    log: Path,
) -> None:
    async def poll() -> None:
        while not await condition():
            assert process.poll() is None, f"`up` exited before {what}: {log.read_text()[-3000:]}"
            await asyncio.sleep(0.5)

    await asyncio.wait_for(poll(), WAIT_S)


async def stopped(process: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return await asyncio.to_thread(process.wait, WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"`up` did not stop: {log.read_text()[-3000:]}") from None


def started(log: Path) -> Callable[[], Awaitable[bool]]:
    """Whether `up` says it runs (its streams are set up and DaemonStarted appended by then)."""

    async def said() -> bool:
        return "Ctrl-C stops cleanly" in log.read_text()

    return said


def of_type(events: list[StoredEvent], kind: str) -> list[StoredEvent]:
    return [s for s in events if s.event.type == kind]


async def unacknowledged(app: App) -> dict[str, int]:
    """Durable consumers of the log and the work queue holding messages unacknowledged."""
    held = {}
    for stream in (LOG_STREAM, WORK_STREAM):
        for consumer in await app.store.js.consumers_info(stream):
            if consumer.config.durable_name and consumer.num_ack_pending:
                held[consumer.name] = consumer.num_ack_pending
    return held


def assert_everything_ended(state: Path, log: Path) -> None:
    assert processes_naming(state) == [], log.read_text()[-3000:]  # no child, no nats-server
    assert list((state / "pids").glob("*.json")) == []
    assert not (state / "nats.url").exists()
    assert "a rerun resumes from here" in log.read_text()


async def test_ctrl_c_drains_the_training_in_hand_and_a_rerun_resumes(tmp_path: Path) -> None:
    state, first_log = tmp_path / "state", tmp_path / "first.log"
    first = up(state, first_log, "--handlers", STAGES)
    try:
        await wait_until(started(first_log), first, "it started", first_log)
        async with Bus(state) as app:

            async def training_in_hand() -> bool:
                return any(s.event.task_type == "training"  # type: ignore[attr-defined]
                           for s in of_type(await log_of(app), "task.started"))  # fmt: skip

            await wait_until(training_in_hand, first, "a training began", first_log)
            [requested] = of_type(await log_of(app), "training.requested")
        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C
        assert await stopped(first, first_log) == 0, first_log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert_everything_ended(state, first_log)

    async with Bus(state) as app:
        events = await log_of(app)
        assert await unacknowledged(app) == {}
        games_before = int((await app.store.js.stream_info(GAMES_STREAM)).state.messages)
    training_id = requested.event.training_id  # type: ignore[attr-defined]
    # the training in hand finished before `up` exited: completed once, its slot given back
    [completed] = of_type(events, "training.completed")
    assert completed.event.training_id == training_id  # type: ignore[attr-defined]
    assert [s.event.task_type for s in of_type(events, "task.finished")].count("training") == 1  # type: ignore[attr-defined]
    stops = collections.Counter(s.event.daemon for s in of_type(events, "daemon.stopped"))  # type: ignore[attr-defined]
    assert stops == {"up": 1, "selfplay": 1, "trainer": 1}
    assert events[-1].event.type == "daemon.stopped" and events[-1].event.daemon == "up"  # type: ignore[attr-defined]
    assert games_before >= 8  # the data gate's threshold for square8_2p in the tiny profile

    rerun_log = tmp_path / "rerun.log"
    rerun = up(state, rerun_log, "--handlers", STAGES)
    try:
        await wait_until(started(rerun_log), rerun, "it started", rerun_log)
        async with Bus(state) as app:

            async def played_on() -> bool:
                info = await app.store.js.stream_info(GAMES_STREAM)
                return int(info.state.messages) >= games_before + 2

            await wait_until(played_on, rerun, "selfplay went on", rerun_log)
        rerun.send_signal(signal.SIGTERM)  # as a service manager stops it
        assert await stopped(rerun, rerun_log) == 0, rerun_log.read_text()[-3000:]
    finally:
        if rerun.poll() is None:
            os.killpg(rerun.pid, signal.SIGKILL)
    assert_everything_ended(state, rerun_log)

    async with Bus(state) as app:
        after = await log_of(app)
        assert await unacknowledged(app) == {}
        games = await app.store.read_all(GAMES_STREAM, "games.>")
    assert after[: len(events)] == events  # the rerun appended; it changed nothing before
    # nothing done twice: one completion per training, each request once, each game once
    completions = collections.Counter(
        s.event.training_id for s in of_type(after, "training.completed")
    )  # type: ignore[attr-defined]
    assert completions[training_id] == 1 and max(completions.values()) == 1
    requests = [s.event.training_id for s in of_type(after, "training.requested")]  # type: ignore[attr-defined]
    assert len(requests) == len(set(requests))
    game_ids = [s.event.game_id for s in games]  # type: ignore[attr-defined]
    assert len(game_ids) == len(set(game_ids)) >= games_before + 2
    stops = collections.Counter(s.event.daemon for s in of_type(after, "daemon.stopped"))  # type: ignore[attr-defined]
    assert stops == {"up": 2, "selfplay": 2, "trainer": 2}
    # the projections resumed from their checkpoints: a rebuild equals them
    check = subprocess.run(
        [sys.executable, "-m", "ops", "replay", "--check", "--state-dir", str(state)],
        capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert check.returncode == 0 and "0 difference(s)" in check.stdout, check.stdout + check.stderr


async def test_a_second_up_on_a_served_state_folder_exits_3_naming_the_first(
    tmp_path: Path,
) -> None:
    state, log = tmp_path / "state", tmp_path / "first.log"
    first = up(state, log, "--handlers", "coordinator,projector")  # it holds the folder
    try:
        await wait_until(started(log), first, "it started", log)
        async with Bus(state) as app:
            url = (state / "nats.url").read_text()
            second = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "ops", "up", "--profile", "tiny", "--state-dir",
                 str(state)],
                capture_output=True, text=True, timeout=WAIT_S,
            )  # fmt: skip
            assert second.returncode == 3, second.stderr
            assert f"ringloop: {state} is already served by " in second.stderr
            assert f" pid {first.pid} since " in second.stderr
            # the first goes on undisturbed: its server, its records, its log
            assert first.poll() is None and (state / "nats.url").read_text() == url
            assert [s.event.daemon for s in of_type(await log_of(app), "daemon.started")] == ["up"]  # type: ignore[attr-defined]
        first.send_signal(signal.SIGTERM)
        assert await stopped(first, log) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert_everything_ended(state, log)
