"""The checkpoint table of a projection database, and a read of it that needs only the
standard library (`ringloop status` reads it without loading sqlite_utils and numpy)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

CHECKPOINTS = "_checkpoints"


def read_checkpoints(path: Path) -> list[dict[str, Any]]:
    """Every projection's checkpoint row in the file, by name; none when the file or its
    table does not exist yet (read-only: the file is never created)."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        rows = db.execute(f"select * from {CHECKPOINTS} order by projection").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        db.close()
    return [dict(row) for row in rows]
