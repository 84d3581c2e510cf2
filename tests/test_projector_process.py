"""`ringloop run projector` as its own process: it folds the log into the state folder's
projections.db, a second one (or an `up` with the projector) is refused, SIGTERM stops it
cleanly; `up --handlers` names what it runs, the projector included."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from events import TrainingRequested
from ops.app import App
from ops.server import EmbeddedServer
from projections.runner import open_db, table_rows
from projections.timeline import ENTRIES

GOLDEN = Path(__file__).resolve().parents[1] / "events" / "golden"


def ringloop(*argv: str) -> list[str]:
    return [sys.executable, "-m", "ops", *argv]


def projector(server: EmbeddedServer, state: Path) -> subprocess.Popen[bytes]:
    command = ringloop("run", "projector", "--nats", server.url, "--state-dir", str(state))
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def timeline_event_ids(state: Path) -> set[str]:
    path = state / "projections.db"
    if not path.exists():
        return set()
    db = open_db(path)
    try:
        if not db.table(ENTRIES.name).exists():
            return set()  # the projector has opened the file but not yet made its tables
        return {row["event_id"] for row in table_rows(db.conn, ENTRIES)}
    finally:
        db.close()


async def test_the_projector_alone_writes_the_read_models_and_is_the_only_one(
    app: App, nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = projector(nats_server, state)
    try:
        requested = TrainingRequested.model_validate_json(
            (GOLDEN / "training.requested.v1.json").read_bytes()
        )
        await app.store.append(requested)

        async def folded() -> None:
            while requested.event_id not in await timeline_event_ids(state):
                assert first.poll() is None, first.stdout.read() if first.stdout else ""
                await asyncio.sleep(0.2)

        await asyncio.wait_for(folded(), 120)
        second = subprocess.run(
            ringloop("run", "projector", "--nats", nats_server.url, "--state-dir", str(state)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 3, second.stderr
        assert "already served by" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        code = first.wait(60)
    assert code == 0


def test_up_refuses_an_unknown_handler_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        ringloop("up", "--handlers", "gating,nosuch", "--state-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "unknown handler(s) nosuch" in result.stderr and "projector" in result.stderr
    assert "Traceback" not in result.stderr
