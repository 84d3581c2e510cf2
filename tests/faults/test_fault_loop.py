"""The whole loop under faults (slow: `pytest -m slow tests/faults`).

- `ringloop up --profile tiny` on a 3-node R3 cluster: a follower, then the log's leader, is
  killed mid-generation; the loop goes on without a restart and completes its generations;
  the nodes rejoin and catch up.
- chaos: a bounded tiny run with at least 50 SIGKILLs of selfplay, trainer and evaluator
  children and of `up` itself (the projector, the rater, the promoter: they run in it),
  each `up` rerun at once; the loop completes its generations.

Both check the log afterwards: each game, training, match, rating update and decision once,
and every projection rebuilt from the log equal to the live one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from fault_invariants import Figures, assert_exactly_once, assert_replay_equal, read_log

from events import GAMES_STREAM, LOG_STREAM
from ops.app import App
from ops.cluster import LoopbackCluster
from ops.settings import load_settings
from ops.wiring import PROJECTIONS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def start_up(state: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "ops", "up", "--profile", "tiny", "--state-dir", str(state),
            "--progress-every", "0", "--log-level", "warning", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


async def count(app: App, stream: str, subject: str) -> int:
    try:
        return len([r async for chunk in app.store.read_raw(stream, subject) for r in chunk])
    except Exception:  # asked mid-election; the caller asks again
        return 0


async def check_log(app: App, figures: Figures) -> None:
    log, games = await read_log(app)
    counts = assert_exactly_once(log, games)
    assert counts["decisions"] >= 1 and counts["trainings"] >= 1
    await assert_replay_equal(app, sorted(PROJECTIONS))
    figures.values.update(counts)


def test_whole_loop_on_r3_cluster_survives_a_follower_then_the_leader(
    cluster: LoopbackCluster, tmp_path: Path
) -> None:
    figures = Figures("loop-cluster-r3")
    state, log = tmp_path / "state", tmp_path / "up.log"
    up = start_up(state, log, "--nats", cluster.url, "--replicas", "3", "--generations", "2")

    async def faults() -> None:
        settings = load_settings(None, state_dir=str(state), nats__url=cluster.url)
        app = await App.open(settings, start_server=False, setup=False)
        try:
            while await count(app, GAMES_STREAM, "games.>") < 20:
                assert up.poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.5)
            for kind in ("follower", "leader"):
                info = await app.store.js.stream_info(LOG_STREAM)
                leader = str(info.cluster.leader) if info.cluster else ""
                victim = (
                    leader
                    if kind == "leader"
                    else next(n.name for n in cluster.nodes if n.name != leader)
                )
                before = await count(app, LOG_STREAM, "loop.>")
                killed = time.monotonic()
                cluster.kill(victim)
                while await count(app, LOG_STREAM, "loop.>") < before + 5:
                    assert up.poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.5)
                figures[f"{kind}_recovery_s"] = round(time.monotonic() - killed, 1)
                cluster.restart(victim)
            figures["kills"] = 2
        finally:
            await app.close()

    try:
        asyncio.run(faults())
        assert up.wait(1200) == 0, log.read_text()[-3000:]
    finally:
        if up.poll() is None:
            up.kill()

    async def verify() -> None:
        settings = load_settings(None, state_dir=str(state), nats__url=cluster.url)
        app = await App.open(settings, start_server=False, setup=False)
        try:
            await check_log(app, figures)
        finally:
            await app.close()

    asyncio.run(verify())
    figures.show()


def recorded_children(state: Path) -> list[tuple[str, int]]:
    found = []
    for path in (state / "pids").glob("*.json"):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if entry["name"] != "nats-server" and psutil.pid_exists(entry["pid"]):
            found.append((entry["name"], int(entry["pid"])))
    return found


def test_chaos_fifty_kills_and_the_loop_completes(tmp_path: Path) -> None:
    figures = Figures("chaos")
    state, log = tmp_path / "state", tmp_path / "up.log"
    rng = random.Random(11)
    generations = ["--generations", "2"]
    up = start_up(state, log, *generations)
    kills: dict[str, int] = {}
    began = time.monotonic()
    try:
        while sum(kills.values()) < 50:
            assert time.monotonic() - began < 1500, f"chaos too slow: {kills}"
            time.sleep(rng.uniform(2.0, 5.0))
            if up.poll() is not None:
                up = start_up(state, log, *generations)  # it finished or died: run it again
                continue
            children = recorded_children(state)
            if not children:
                continue  # still starting: its children are not up yet
            if rng.random() < 0.15:
                up.kill()  # the projector, rater and promoter run in `up`
                up.wait(60)
                kills["up"] = kills.get("up", 0) + 1
                up = start_up(state, log, *generations)
                continue
            name, pid = rng.choice(children)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            kills[name] = kills.get(name, 0) + 1
        figures["kills"] = dict(kills)
        for name in ("up", "selfplay", "trainer", "evaluator"):
            assert kills.get(name, 0) > 0, f"no {name} killed: {kills}"
        figures["chaos_s"] = round(time.monotonic() - began)
        assert up.wait(1500) == 0, log.read_text()[-3000:]  # left alone, it completes
    finally:
        if up.poll() is None:
            up.kill()

    async def verify() -> None:
        app = await App.open(load_settings(None, state_dir=str(state)), setup=False)
        try:
            await check_log(app, figures)
        finally:
            await app.close()

    asyncio.run(verify())
    figures.show()
