"""The whole loop as a user runs it: `ringloop up --profile tiny` through every stage.

One tiny generation (selfplay → data gate → trainer → evaluator → Elo → promoter →
curriculum), a second loop against the same NATS refused, every projection rebuilt from
the log and compared with the live one, then a rerun that resumes where the first stopped.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from events import LOG_STREAM
from ops.app import App
from ops.settings import load_settings

pytestmark = pytest.mark.slow


def ringloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "ops", *args]


def up(state: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = ringloop(
        "up",
        "--profile",
        "tiny",
        "--generations",
        "1",
        "--state-dir",
        str(state),
        "--progress-every",
        "0",
    )
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "ringloop up exited early"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def wait_for_up_started(state: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Until `up` appended its DaemonStarted: it holds the loop lease from just before."""
    deadline = time.monotonic() + timeout
    while not any(
        s.event.type == "daemon.started" and s.event.daemon == "up"  # type: ignore[attr-defined]
        for s in asyncio.run(loop_events(state))
    ):
        assert process.poll() is None, "ringloop up exited early"
        assert time.monotonic() < deadline, f"ringloop up did not start within {timeout:g}s"
        time.sleep(0.5)


async def loop_events(state: Path) -> list:  # type: ignore[type-arg]
    app = await App.open(load_settings(None, state_dir=str(state)))
    try:
        return await app.store.read_all(LOG_STREAM, "loop.>")
    finally:
        await app.close()


@pytest.mark.timeout(1800)  # its own bounded waits below say which step was slow
def test_tiny_generation_end_to_end_then_resume(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first_log = tmp_path / "first.log"
    first = up(state, first_log)
    try:
        wait_for_file(state / "nats.url", first)
        url = (state / "nats.url").read_text().strip()
        wait_for_up_started(state, first, timeout=180)
        second = subprocess.run(
            ringloop(
                "up", "--nats", url, "--state-dir", str(tmp_path / "other"), "--profile", "tiny"
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 3, second.stderr
        assert "another improvement loop" in second.stderr and socket.gethostname() in second.stderr
        assert first.wait(timeout=600) == 0, first_log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()

    check = subprocess.run(
        ringloop("replay", "--check", "--state-dir", str(state)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 difference(s)" in check.stdout

    events = asyncio.run(loop_events(state))
    types = collections.Counter(s.event.type for s in events)
    for expected in (
        "training.requested",
        "training.completed",
        "evaluation.completed",
        "match.completed",
        "elo.updated",
        "curriculum.rebalanced",
    ):
        assert types[expected] >= 1, (expected, types)
    decisions = [s.event for s in events if s.event.type in ("model.promoted", "model.rejected")]
    assert len(decisions) >= 1
    first_model = decisions[0].model_id
    explained = subprocess.run(
        ringloop("explain", "model", first_model, "--state-dir", str(state)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert explained.returncode == 0 and first_model in explained.stdout

    # A rerun resumes: nothing redone (one completion per training, one decision per
    # model) and nothing lost (the next decision comes on top of the first).
    rerun = up(state, tmp_path / "rerun.log")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    events = asyncio.run(loop_events(state))
    completions = collections.Counter(
        s.event.training_id for s in events if s.event.type == "training.completed"
    )
    assert completions and max(completions.values()) == 1
    decided = collections.Counter(
        s.event.model_id for s in events if s.event.type in ("model.promoted", "model.rejected")
    )
    assert max(decided.values()) == 1 and sum(decided.values()) >= 2
    matches = collections.Counter(
        s.event.match_id for s in events if s.event.type == "match.completed"
    )
    assert max(matches.values()) == 1


def processes_naming(path: Path) -> list[str]:
    """Command lines of live (not zombie) processes that mention ``path``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            zombie = "State:\tZ" in (entry / "status").read_text()
        except OSError:  # the process ended while being read
            continue
        if str(path) in command and not zombie:
            found.append(command)
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_stopped_learning_bench_stops_its_loop_and_server(tmp_path: Path) -> None:
    state, log = tmp_path / "bench", tmp_path / "bench.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = ringloop(
        "bench", "learning", "--preset", "tiny", "--minutes", "10", "--keep", str(state)
    )
    bench = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_file(state / "nats.url", bench)
        deadline = time.monotonic() + 60
        while not any(" run selfplay " in c for c in processes_naming(state)):
            assert bench.poll() is None and time.monotonic() < deadline, "no handler started"
            time.sleep(0.1)
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=300) == 130, log.read_text()[-3000:]
    finally:
        if bench.poll() is None:
            bench.kill()
    assert "interrupted; the loop was stopped" in log.read_text()
    assert processes_naming(state) == []  # no loop, handler or nats-server left behind
