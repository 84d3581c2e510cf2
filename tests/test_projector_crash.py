"""A process writing a projection file, killed with SIGKILL mid-rebuild: the file holds
exactly the fold of the log up to the checkpoint it recorded (rows and checkpoint are one
SQLite transaction), and folding on from there reaches the same state as from sequence 1."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from events import LOG_STREAM, MatchCompleted
from ops.app import App
from ops.replay import diff_states, live_state, rebuild
from ops.settings import Settings
from ops.wiring import PROJECTIONS
from projections.runner import PERSIST_EVERY, ProjectionRunner, open_db

EVENTS = 6 * PERSIST_EVERY  # several transactions, so the kill lands between first and last


def recorded_checkpoint(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute(
                "select last_seq from _checkpoints where projection = 'elo'"
            ).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0]) if row else 0


async def test_a_projection_file_killed_mid_write_equals_the_fold_to_its_checkpoint(
    app: App, settings: Settings, tmp_path: Path
) -> None:
    start = await app.store.last_seq(LOG_STREAM)
    await app.store.append_many([
        MatchCompleted(config="square8_2p", match_id=f"crash-{i}",
                       participants=[{"participant_id": f"p{i % 7}", "rank": 1},
                                     {"participant_id": f"p{(i + 3) % 7}", "rank": 2}])
        for i in range(EVENTS)
    ])  # fmt: skip
    end = await app.store.last_seq(LOG_STREAM)
    db = tmp_path / "projections.db"
    writer = subprocess.Popen(
        [sys.executable, "-m", "ops", "replay", "--projection", "elo", "--out", str(db),
         "--nats", str(settings.nats.url), "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:

        async def mid_write() -> int:
            while not 0 < (seq := recorded_checkpoint(db)) < end:
                assert writer.poll() is None, f"it finished first: {writer.stderr.read()!r}"  # type: ignore[union-attr]
                await asyncio.sleep(0.02)
            return seq

        await asyncio.wait_for(mid_write(), 240)
        os.kill(writer.pid, signal.SIGKILL)
        assert await asyncio.to_thread(writer.wait, 60) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()

    position, stored = live_state(db, "elo")
    assert start < position < end  # stopped part-way, at a transaction's checkpoint
    [fold] = await rebuild(app, ["elo"], ":memory:", until_seq=position)
    assert fold.position == position
    assert diff_states("elo", stored.snapshot(), fold.state.snapshot()) == []
    assert stored.count("elo_matches") == fold.state.count("elo_matches") > 0

    # a runner on the killed file folds on from its checkpoint to the same end state
    resumed = ProjectionRunner(PROJECTIONS["elo"](), app.store, open_db(db))
    assert resumed.position == position
    assert await resumed.catch_up() == end
    [whole] = await rebuild(app, ["elo"], ":memory:", until_seq=end)
    assert diff_states("elo", resumed.state.snapshot(), whole.state.snapshot()) == []
