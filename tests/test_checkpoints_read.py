"""`ringloop status` reads projection checkpoints with the standard library only: the rows the
runner wrote, and nothing (the file not created) where there is no file or no table yet."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from projections.checkpoints import CHECKPOINTS, read_checkpoints
from projections.runner import open_db


def test_rows_written_by_the_runner_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "projections.db"
    db = open_db(path)
    db.table(CHECKPOINTS).upsert(
        {"projection": "elo", "stream": "RINGLOOP_LOG", "last_seq": 42, "updated_at": "t"},
        pk="projection",
    )
    db.table(CHECKPOINTS).upsert(
        {"projection": "curriculum", "stream": "RINGLOOP_LOG", "last_seq": 7, "updated_at": "u"},
        pk="projection",
    )
    rows = read_checkpoints(path)
    assert [(r["projection"], r["stream"], r["last_seq"]) for r in rows] == [
        ("curriculum", "RINGLOOP_LOG", 7),
        ("elo", "RINGLOOP_LOG", 42),
    ]


def test_no_file_and_no_table_read_as_none_and_create_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "projections.db"
    assert read_checkpoints(missing) == []
    assert not missing.exists() and not missing.parent.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("create table other (x)").connection.close()
    assert read_checkpoints(empty) == []


def test_the_status_command_loads_no_sqlite_utils_numpy_or_handlers() -> None:
    probe = (
        "import sys, ops.commands.status; "
        "print(sorted(m for m in ('sqlite_utils', 'numpy', 'torch', 'handlers.runtime') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
