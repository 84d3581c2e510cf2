"""The whole loop under faults (slow: `pytest -m slow tests/faults`).

- `ringloop up --profile tiny` on a 3-node R3 cluster: a follower, then the log's leader, is
  killed mid-generation; the loop goes on without a restart and completes its generations;
  the nodes rejoin and catch up.
- chaos: a bounded tiny run with at least 50 SIGKILLs of the selfplay, trainer and evaluator
  children of `up`, of the Elo rater, the promoter and the projector (each `ringloop run`
  alone) and of `up` itself; every process killed is started again (by `up`, or by the test
  as a service manager would) and the loop completes its generations.

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
from fault_invariants import (
    Figures,
    assert_exactly_once,
    assert_replay_equal,
    consumers_drained,
    read_log,
    wait_until,
)

from events import GAMES_STREAM, LOG_STREAM
from ops.app import App
from ops.cluster import LoopbackCluster
from ops.server import EmbeddedServer
from ops.settings import load_settings
from ops.wiring import PROJECTIONS, reactions
from projections.runner import checkpoint, open_db

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
    """The handler children `up` recorded under the state folder that still run."""
    found = []
    for path in (state / "pids").glob("*.json"):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if entry["name"] != "nats-server" and psutil.pid_exists(entry["pid"]):
            found.append((entry["name"], int(entry["pid"])))
    return found


# The chaos run's processes: `up` (its light stages inline, selfplay, trainer and evaluator as
# its children, restarted by it) and, each its own process restarted by the test as a service
# manager would: the Elo rater, the promoter and the projector (the state folder's read models).
ALONE = ("elo-rater", "promoter", "projector")
CHILDREN = ("selfplay", "trainer", "evaluator")


class Chaos:
    """The processes of one loop on `url`, started again whenever they exit."""

    def __init__(self, url: str, state: Path, logs: Path) -> None:
        from ops.wiring import stages

        self.url, self.state, self.logs = url, state, logs
        inline = [name for name in stages() if name not in ALONE]
        self.up_argv = ["--nats", url, "--handlers", ",".join(inline), "--generations", "2"]
        self.alone: dict[str, subprocess.Popen[bytes]] = {}
        self.up = start_up(state, logs / "up.log", *self.up_argv)
        for name in ALONE:
            self.alone[name] = self.start(name)

    def start(self, name: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "ops", "run", name, "--profile", "tiny", "--nats", self.url,
                "--state-dir", str(self.state), "--log-level", "warning"]  # fmt: skip
        out = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def restart_exited(self) -> None:
        if self.up.poll() is not None:  # it finished its generations or died: run it again
            self.up = start_up(self.state, self.logs / "up.log", *self.up_argv)
        self.restart_alone()

    def restart_alone(self) -> None:
        for name, process in self.alone.items():
            if process.poll() is not None:
                self.alone[name] = self.start(name)

    def victims(self) -> list[tuple[str, int]]:
        running = [(n, p.pid) for n, p in self.alone.items() if p.poll() is None]
        return running + recorded_children(self.state)

    def stop(self) -> dict[str, int | None]:
        """SIGTERM the processes of the test (each drains); their exit codes."""
        codes: dict[str, int | None] = {}
        for name, process in self.alone.items():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                codes[name] = process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = None
        if self.up.poll() is None:
            self.up.kill()
        return codes

    def tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


def restart_seconds(chaos: Chaos, name: str, killed_pid: int, within: float = 30.0) -> float | None:
    """How long until `up` runs a new child of that kind (None: not within `within`)."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        if any(n == name and pid != killed_pid for n, pid in recorded_children(chaos.state)):
            return time.monotonic() - began
        time.sleep(0.1)
    return None


async def settled(url: str, state: Path, timeout: float) -> float:
    """Wait until the rater and the promoter have consumed every event and the projector has
    folded the whole log; returns the seconds it took."""
    settings = load_settings(None, state_dir=str(state), nats__url=url)
    app = await App.open(settings, start_server=False, setup=False)
    durables = [r.durable for r in reactions() if r.stage in ALONE]
    try:

        async def done() -> bool:
            if not await consumers_drained(app, LOG_STREAM, durables):
                return False
            ends = {
                name: await app.store.last_seq(PROJECTIONS[name]().stream) for name in PROJECTIONS
            }
            db = open_db(settings.projections_db)
            try:
                return all(checkpoint(db, name) >= end for name, end in ends.items())
            finally:
                db.close()

        return await wait_until(done, timeout, "the rater, promoter and projector to settle", 1.0)
    finally:
        await app.close()


def test_chaos_fifty_kills_and_the_loop_completes(
    nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    figures = Figures("chaos")
    state, logs = tmp_path / "state", tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(11)
    chaos = Chaos(nats_server.url, state, logs)
    kills: dict[str, int] = {}
    restarts: list[float] = []
    began = time.monotonic()
    try:
        while sum(kills.values()) < 50:
            assert time.monotonic() - began < 1500, f"chaos too slow: {kills}\n{chaos.tail()}"
            time.sleep(rng.uniform(2.0, 5.0))
            chaos.restart_exited()
            victims = chaos.victims()
            kinds = sorted({name for name, _ in victims})
            if not any(kind in CHILDREN for kind in kinds):
                continue  # `up` is still starting: its children are not up yet
            if rng.random() < 0.1:
                chaos.up.kill()  # its inline stages: gating, data gate, curriculum, ...
                chaos.up.wait(60)
                kills["up"] = kills.get("up", 0) + 1
                continue
            kind = rng.choice(kinds)  # each kind as likely, whatever its number of copies
            pid = rng.choice([pid for name, pid in victims if name == kind])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            kills[kind] = kills.get(kind, 0) + 1
            if kind in chaos.alone:  # reaped, so the next restart_alone sees it gone
                chaos.alone[kind].wait(30)
            if kind in CHILDREN:
                seconds = restart_seconds(chaos, kind, pid)
                assert seconds is not None, f"`up` did not restart {kind}\n{chaos.tail()}"
                restarts.append(seconds)
        figures["kills"] = dict(sorted(kills.items()))
        for name in (*ALONE, *CHILDREN, "up"):
            assert kills.get(name, 0) > 0, f"no {name} killed: {kills}"
        figures["chaos_s"] = round(time.monotonic() - began)
        figures["child_restart_s_max"] = round(max(restarts), 1)
        # the last kill's victim (`up` itself, if it was the one) runs again; from here on
        # nothing is killed
        if chaos.up.poll() not in (None, 0):
            chaos.restart_exited()
        else:
            chaos.restart_alone()
        left_alone = time.monotonic()
        while chaos.up.poll() is None:  # left alone (restarted if one exits), it completes
            assert time.monotonic() - left_alone < 1500, chaos.tail()
            time.sleep(1.0)
            for name, process in chaos.alone.items():
                assert process.poll() is None, f"{name} exited\n{chaos.tail()}"
        assert chaos.up.returncode == 0, chaos.tail()
        figures["completed_after_chaos_s"] = round(time.monotonic() - left_alone)
        figures["settled_s"] = round(asyncio.run(settled(nats_server.url, state, 600)), 1)
    finally:
        codes = chaos.stop()
    assert codes == dict.fromkeys(ALONE, 0), f"{codes}\n{chaos.tail()}"

    async def verify() -> None:
        settings = load_settings(None, state_dir=str(state), nats__url=nats_server.url)
        app = await App.open(settings, start_server=False, setup=False)
        try:
            await check_log(app, figures)
        finally:
            await app.close()

    asyncio.run(verify())
    figures.show()
