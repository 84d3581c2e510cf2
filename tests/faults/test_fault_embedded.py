"""`ringloop up` on its embedded server, with matches appended and rated throughout: the
server is killed with SIGKILL (up restarts it), then `up` itself (its server dies with it;
the rerun takes the dead holder's loop lease over at once and carries on). Nothing
acknowledged is lost, each match is rated once, and the rebuilt read models equal the live.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from fault_invariants import (
    Figures,
    assert_exactly_once,
    assert_nothing_lost,
    assert_replay_equal,
    wait_until,
)
from test_fault_cluster import Producer

from events import LOG_STREAM
from ops.app import App
from ops.settings import load_settings
from projections.transient import is_transient


def start_up(state: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "ops", "up", "--handlers", "elo-rater", "--state-dir",
            str(state), "--progress-every", "0", "--log-level", "warning"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def server_pid(state: Path) -> int | None:
    for path in (state / "pids").glob("nats-server-*.json"):
        pid = int(json.loads(path.read_text())["pid"])
        if psutil.pid_exists(pid):
            return pid
    return None


async def rated_count(app: App) -> int:
    try:
        return len(await app.store.read_all(LOG_STREAM, "loop.elo.updated.>"))
    except Exception as exc:
        if not is_transient(exc):
            raise
        return -1


async def test_embedded_server_and_up_killed_each_recover_unattended(tmp_path: Path) -> None:
    figures = Figures("embedded")
    state, log = tmp_path / "state", tmp_path / "up.log"
    first = start_up(state, log)
    url_file = state / "nats.url"
    await wait_until(lambda: url_file.exists() and server_pid(state), 60, "the embedded server")
    url = url_file.read_text().strip()
    settings = load_settings(None, state_dir=str(tmp_path / "client"), nats__url=url)
    app = await App.open(settings, start_server=False, setup=False)
    producer = Producer(app)
    producing = asyncio.create_task(producer.run())
    try:
        await wait_until(lambda: _more(app, 0), 120, "the first ratings")

        # 1. the embedded server dies under the loop; up restarts it on the same port
        before, killed_at = await rated_count(app), time.monotonic()
        old_server = server_pid(state)
        assert old_server is not None
        os.kill(old_server, signal.SIGKILL)
        await wait_until(lambda: _more(app, before), 120, "ratings after the server's restart")
        figures["server_kill_recovery_s"] = round(time.monotonic() - killed_at, 2)
        assert first.poll() is None, log.read_text()[-2000:]
        assert server_pid(state) not in (None, old_server)

        # 2. up dies (SIGKILL): its server follows it; the rerun takes over the loop lease
        dying_server = server_pid(state)
        before = await rated_count(app)
        first.kill()
        first.wait(30)
        await wait_until(lambda: not psutil.pid_exists(dying_server or 0), 30, "its server to die")
        killed_at = time.monotonic()
        second = start_up(state, log)
        try:
            await wait_until(lambda: _more(app, before), 120, "ratings after the rerun")
            figures["up_kill_rerun_s"] = round(time.monotonic() - killed_at, 2)
            assert url_file.read_text().strip() == url  # the same port again
            producer.stop.set()
            await producing
            total = len(producer.acknowledged)
            await wait_until(lambda: _more(app, total - 1, 1), 120, "every match rated")
            await app.close()  # before its server goes
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(120) == 0, log.read_text()[-3000:]
    finally:
        producer.stop.set()
        await asyncio.gather(producing, return_exceptions=True)
        if not app.nc.is_closed:
            await asyncio.gather(app.close(), return_exceptions=True)
        if first.poll() is None:
            first.kill()
    assert "another improvement loop" not in log.read_text()

    checker = await App.open(load_settings(None, state_dir=str(state)), setup=False)
    try:
        stored = await checker.store.read_all(LOG_STREAM, "loop.>")
        assert_nothing_lost(stored, producer.acknowledged)
        counts = assert_exactly_once(stored, [])
        assert counts["matches"] == len(producer.acknowledged)
        await assert_replay_equal(checker, ["elo"])
    finally:
        await checker.close()
    figures["kills"] = 2
    figures.values.update(counts)
    figures.show()


async def _more(app: App, before: int, more: int = 5) -> bool:
    return await rated_count(app) >= before + more
