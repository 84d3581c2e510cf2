"""Importing a RingRift unified_elo.db onto a real nats-server: order, rating, refusals, re-runs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events import LOG_STREAM, MatchCompleted
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.cli import main
from ops.elo_import import import_elo_db, plan, read_source, source_matches
from ops.settings import Settings

# RingRift's unified_elo.db layout (app/tournament/unified_elo_db.py): the columns the
# import reads, plus a few it ignores.
SCHEMA = """
create table participants (
    participant_id text primary key, participant_type text not null default 'model',
    ai_type text, difficulty integer, use_neural_net integer, model_path text,
    model_version text, metadata text, created_at real, last_seen real);
create table elo_ratings (
    participant_id text not null, board_type text not null, num_players integer not null,
    rating real default 1500.0, games_played integer default 0, wins integer default 0,
    losses integer default 0, draws integer default 0, rating_deviation real default 350.0,
    last_update real, primary key (participant_id, board_type, num_players));
create table match_history (
    id integer primary key autoincrement, participant_a text, participant_b text,
    participant_ids text, rankings text, winner text, board_type text not null,
    num_players integer not null, game_length integer, duration_sec real,
    timestamp real not null, tournament_id text, game_id text, worker text, metadata text,
    elo_before text, elo_after text);
"""

MATCHES = [
    # (participant_ids, rankings, board_type, num_players, timestamp, game_id)
    (["a", "b"], [0, 1], "square8", 2, 1000.0, None),
    (["b", "a"], [0, 1], "square8", 2, 1001.0, "g-2"),
    (["w4", "x4", "y4", "z4"], [0, 1, 1, 3], "hex8", 4, 1002.0, None),
    (["a", "ringrift_best_square8_4p"], [0, 1], "square8", 2, 1004.0, None),  # mixed (id)
    (["a", "x4"], [1, 0], "square8", 2, 1005.0, None),  # mixed: x4 is rated in hex8_4p only
    (["a", "b"], [0, 1], "triangle", 2, 1006.0, None),  # unknown board type
    (["a", "b", "c"], [0, 1, 2], "square8", 2, 1007.0, None),  # 3 players in a 2p match
    (["a", "b"], [1, 0], "square8", 2, 999.0, None),  # inserted last, played first
]
RATED = [("a", "square8", 2), ("b", "square8", 2)] + [
    (p, "hex8", 4) for p in ("w4", "x4", "y4", "z4")
]


def build_unified_elo_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    for ids, ranks, board, players, stamp, game_id in MATCHES:
        winner = ids[ranks.index(0)]
        conn.execute(
            "insert into match_history (participant_a, participant_b, participant_ids, rankings,"
            " winner, board_type, num_players, timestamp, tournament_id, game_id)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, 'ringrift-t', ?)",
            (ids[0], ids[1], json.dumps(ids), json.dumps(ranks), winner, board, players, stamp, game_id),
        )  # fmt: skip
    # an old two-player row: no JSON columns filled, the winner names the result
    conn.execute(
        "insert into match_history (participant_a, participant_b, winner, board_type,"
        " num_players, timestamp) values ('a', 'b', 'b', 'square8', 2, 1003.0)"
    )
    conn.executemany(
        "insert into elo_ratings (participant_id, board_type, num_players) values (?, ?, ?)",
        RATED,
    )
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
async def rater(app: App) -> AsyncIterator[None]:
    """The elo-rater in this process for the module (a fetch timeout does not end its run)."""
    runtime = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    task = asyncio.create_task(runtime.run())
    yield
    runtime.stop()
    await asyncio.wait_for(task, 30)


async def imported(app: App) -> list[MatchCompleted]:
    stored = await app.store.read_all(LOG_STREAM, "loop.match.completed.>")
    events = [s.event for s in stored if isinstance(s.event, MatchCompleted)]
    return [event for event in events if event.context == "import"]


async def rated(app: App, config: str, count: int, timeout: float = 20) -> None:
    async def poll() -> None:
        while len(await app.store.read_all(LOG_STREAM, f"loop.elo.updated.{config}")) < count:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def test_old_two_player_layout_reads(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.executescript(
        "create table match_history (id integer primary key, participant_a text,"
        " participant_b text, winner text, board_type text, num_players integer,"
        " timestamp text);"
        "insert into match_history values (1, 'p', 'q', 'q', 'hexagonal', 2, '2025-01-02T03:04:05');"
        "insert into match_history values (2, 'p', 'q', null, 'hexagonal', 2, '2025-01-01T00:00:00');"
    )  # fmt: skip
    conn.row_factory = sqlite3.Row
    [draw, win] = source_matches(conn)
    assert (draw.row_id, draw.positions, win.positions) == ("2", [0, 0], [1, 0])
    events, report = plan([draw, win], {}, set())
    assert report.imported == 2 and [e.config for e in events] == ["hexagonal_2p"] * 2
    assert [p.rank for p in events[1].participants] == [2, 1]


async def test_import_rates_in_order_skips_mixed_and_reruns_append_nothing(
    app: App, rater: None, settings: Settings, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    source = build_unified_elo_db(tmp_path / "unified_elo.db")
    report = await import_elo_db(app, source)
    assert (report.read, report.imported, report.already_present) == (9, 5, 0)
    assert report.skipped == {
        "mixed configs": 2,
        "unknown board type": 1,
        "player count mismatch": 1,
    }
    assert "ringrift_best_square8_4p" in report.examples["mixed configs"][0]
    assert "rated only in ['hex8_4p']" in report.examples["mixed configs"][1]

    events = await imported(app)
    square = [e for e in events if e.config == "square8_2p"]
    assert [e.occurred_at.timestamp() for e in square] == [999.0, 1000.0, 1001.0, 1003.0]
    assert square[2].match_id == "ringrift:g-2" and square[2].context_id == "ringrift-t"
    [four] = [e for e in events if e.config == "hex8_4p"]
    assert [p.rank for p in four.participants] == [1, 2, 2, 4]

    await rated(app, "square8_2p", 4)
    await rated(app, "hex8_4p", 1)
    await app.refresh("elo")
    ratings = app.runners["elo"].state
    a, b = (
        ratings.get("elo_ratings", "square8_2p", "a"),
        ratings.get("elo_ratings", "square8_2p", "b"),
    )
    assert a is not None and b is not None
    assert (a["games"], a["wins"], b["wins"]) == (4, 1, 3)

    # again, in process: the read model already holds every match
    last = await app.store.last_seq(LOG_STREAM)
    again = await import_elo_db(app, source)
    assert (again.imported, again.already_present) == (0, 5)
    # below the read model, JetStream's duplicate window drops the same ids
    matches, known = read_source(source)
    fresh, _ = plan(matches, known, set())
    await app.store.append_many(fresh)
    assert await app.store.last_seq(LOG_STREAM) == last

    # and from the command line, with a state folder of its own
    args = ["import-elo-db", str(source), "--json", "--nats", str(settings.nats.url)]
    args += ["--state-dir", str(tmp_path / "cli-state")]
    assert await asyncio.to_thread(main, args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["read"], summary["imported"], summary["already_present"]) == (9, 0, 5)
    assert summary["skipped"]["mixed configs"] == 2
    assert await app.store.last_seq(LOG_STREAM) == last


async def test_missing_or_foreign_file_is_a_clear_error(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite3.connect(tmp_path / "other.db").execute("create table t (x)").connection.close()
    base = ["--nats", str(settings.nats.url), "--state-dir", str(tmp_path / "s")]
    assert await asyncio.to_thread(main, ["import-elo-db", str(tmp_path / "none.db"), *base]) == 2
    assert await asyncio.to_thread(main, ["import-elo-db", str(tmp_path / "other.db"), *base]) == 2
    (tmp_path / "text.db").write_text("not a database")
    assert await asyncio.to_thread(main, ["import-elo-db", str(tmp_path / "text.db"), *base]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "no match_history table" in err
    assert f"{str(tmp_path / 'text.db')!r} is not an SQLite database" in err
