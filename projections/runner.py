"""Runs a projection: catch up from its checkpoint, then follow live, persisting to SQLite.

Rows and the `(projection, stream, last_seq)` checkpoint are written in one transaction
per chunk, so after any crash the stored rows are exactly the fold up to the checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import sqlite_utils
import structlog

from events import EventDecodeError, decode_on
from projections.base import Projection
from projections.checkpoints import CHECKPOINTS
from projections.eventstore import EventStore, RawRecord, StoredEvent
from projections.tables import Table, Tables
from projections.transient import backoff, is_transient, report_transient

log = structlog.get_logger(__name__)

PERSIST_EVERY = 5000  # events folded between two transactions while catching up
SKIPPED = "_skipped"


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating) a projection database in WAL mode, with the bookkeeping tables."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = (
        sqlite_utils.Database(path)
        if str(path) != ":memory:"
        else sqlite_utils.Database(memory=True)
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    db.table(CHECKPOINTS).create(
        {"projection": str, "stream": str, "last_seq": int, "updated_at": str},
        pk="projection",
        if_not_exists=True,
    )
    db.table(SKIPPED).create(
        {"projection": str, "seq": int, "subject": str, "error": str},
        pk=("projection", "seq"),
        if_not_exists=True,
    )
    return db


def ensure_tables(db: sqlite_utils.Database, tables: tuple[Table, ...]) -> None:
    for table in tables:
        columns = {
            name: (str if kind in (dict, list) else kind) for name, kind in table.columns.items()
        }
        db.table(table.name).create(columns, pk=list(table.pk), if_not_exists=True)


def write_rows(
    db: sqlite_utils.Database,
    table: Table,
    upserts: list[dict[str, Any]],
    deletes: list[tuple[Any, ...]],
) -> None:
    """Upsert and delete rows with executemany (sqlite-utils' per-row path is ~10x slower)."""
    columns = list(table.columns)
    if upserts:
        names = ", ".join(f"[{c}]" for c in columns)
        marks = ", ".join("?" for _ in columns)
        pick = itemgetter(*columns)
        rows = (
            [pick(row) for row in upserts]
            if len(columns) > 1
            else [(pick(row),) for row in upserts]
        )
        json_at = [i for i, c in enumerate(columns) if table.columns[c] in (dict, list)]
        if json_at:
            rows = [_jsonify(row, json_at) for row in rows]
        db.conn.executemany(
            f"INSERT OR REPLACE INTO [{table.name}] ({names}) VALUES ({marks})", rows
        )
    if deletes:
        where = " AND ".join(f"[{c}] = ?" for c in table.pk)
        db.conn.executemany(f"DELETE FROM [{table.name}] WHERE {where}", deletes)


def _jsonify(row: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in positions:
        if values[i] is not None:
            values[i] = json.dumps(values[i])
    return tuple(values)


def checkpoint(db: sqlite_utils.Database, projection: str) -> int:
    rows = list(db.query(f"select last_seq from {CHECKPOINTS} where projection = ?", [projection]))
    return int(rows[0]["last_seq"]) if rows else 0


def table_rows(conn: sqlite3.Connection, table: Table) -> list[dict[str, Any]]:
    """A table's stored rows as the fold writes them (JSON columns decoded, bools as bool)."""
    columns = list(table.columns)
    names = ", ".join(f"[{c}]" for c in columns)
    decoded = [c for c in columns if table.columns[c] in (dict, list)]
    bools = [c for c in columns if table.columns[c] is bool]
    rows = []
    for values in conn.execute(f"SELECT {names} FROM [{table.name}]"):
        row = dict(zip(columns, values, strict=True))
        for name in decoded:
            if row[name] is not None:
                row[name] = json.loads(row[name])
        for name in bools:
            if row[name] is not None:
                row[name] = bool(row[name])
        rows.append(row)
    return rows


def load_state(db: sqlite_utils.Database, projection: Projection) -> Tables:
    state = projection.initial()
    for table in projection.tables:
        state.load(table.name, table_rows(db.conn, table))
    return state


def in_memory(db: sqlite_utils.Database) -> bool:
    """Whether the database lives only in this process (no file behind it)."""
    return all(not row[2] for row in db.execute("PRAGMA database_list").fetchall())


class ProjectionRunner:
    """Owns one projection's state and its SQLite file; the only writer of its tables."""

    def __init__(
        self, projection: Projection, store: EventStore, db: sqlite_utils.Database
    ) -> None:
        self.projection = projection
        self.store = store
        self.db = db
        ensure_tables(db, projection.tables)
        self.position = checkpoint(db, projection.name)
        self.state = load_state(db, projection) if self.position else projection.initial()
        self.last_time: datetime | None = None
        self._applied_seq = self.position
        self.applied = 0  # events folded by this runner (not counting a restored state)
        self._unpersisted = 0
        self._skipped: list[dict[str, Any]] = []
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------ driving

    async def catch_up(
        self, *, until_seq: int | None = None, until_time: datetime | None = None
    ) -> int:
        """Apply everything stored now (or up to a sequence or time); return the position."""
        async for chunk in self.store.read_raw(
            self.projection.stream,
            self.projection.subject_filter,
            start_seq=self.position + 1,
            end_seq=until_seq,
            end_time=until_time,
        ):
            await self._apply_chunk(chunk)
        await self._flush()
        return self.position

    async def follow(self) -> None:
        """Catch up, then keep applying new events until cancelled."""
        async for chunk in self.store.read_raw(
            self.projection.stream,
            self.projection.subject_filter,
            start_seq=self.position + 1,
            follow=True,
        ):
            await self._apply_chunk(chunk)

    @property
    def following(self) -> bool:
        """Whether a background task is following the stream (see start)."""
        return self._task is not None and not self._task.done()

    def start(
        self, prepare: Callable[[ProjectionRunner], Awaitable[None]] | None = None
    ) -> asyncio.Task[None]:
        """Follow in a background task; its error is kept and re-raised by wait_for.

        `prepare(runner)` runs first in that task (e.g. restore a snapshot and catch up).
        """
        self._task = asyncio.create_task(
            self._guarded_follow(prepare), name=f"projection:{self.projection.name}"
        )
        return self._task

    def restore(self, state: Tables, position: int) -> None:
        """Start from a state folded elsewhere up to `position` (a verified snapshot).

        Only a fresh runner on an in-memory database may: its SQLite gets the checkpoint and
        the rows changed from here on, not the restored rows, which a file must never lack.
        """
        if self.position or self._applied_seq or not in_memory(self.db):
            raise ValueError(
                f"projection {self.projection.name!r}: only a fresh runner on an in-memory "
                f"database can restore a snapshot (position {self.position})"
            )
        self.state = state
        self._applied_seq = position
        self._persist(position, [])
        self.position = position

    async def _guarded_follow(
        self, prepare: Callable[[ProjectionRunner], Awaitable[None]] | None = None
    ) -> None:
        outage = 0
        try:
            while True:
                try:
                    if prepare is not None and not self.position and not self._applied_seq:
                        await prepare(self)
                    await self.follow()
                    return
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    # the bus is away (a lost node, an election): follow again from here
                    outage += 1
                    delay = backoff(outage)
                    report_transient(f"projection {self.projection.name}", exc, outage, delay)
                    await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # re-raised to every waiter, never swallowed
            self.error = exc
            log.error("projection_failed", projection=self.projection.name, error=repr(exc))
            async with self._advanced:
                self._advanced.notify_all()
            raise

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def wait_for(self, seq: int, timeout: float | None = 10.0) -> int:
        """Block until the projection has applied stream sequence `seq` (or later; None: no limit)."""

        async def reached() -> int:
            async with self._advanced:
                await self._advanced.wait_for(
                    lambda: self.position >= seq or self.error is not None
                )
            if self.error is not None:
                raise self.error
            return self.position

        return await asyncio.wait_for(reached(), timeout)

    # ------------------------------------------------------------ applying

    async def _apply_chunk(self, chunk: list[RawRecord]) -> None:
        """Fold a chunk; persist when caught up, or every PERSIST_EVERY events while behind.
        A message at or before the position (a read resumed after a lost server) is skipped."""
        if chunk[0].seq <= self._applied_seq:
            chunk = [record for record in chunk if record.seq > self._applied_seq]
            if not chunk:
                return
        self._skipped += self._fold_chunk(chunk)
        self._unpersisted += len(chunk)
        self._applied_seq = chunk[-1].seq
        self.last_time = chunk[-1].time
        caught_up = chunk[-1].pending == 0
        if caught_up or self._unpersisted >= PERSIST_EVERY:
            await self._flush()

    async def _flush(self) -> None:
        if self._applied_seq <= self.position:
            return
        self._persist(self._applied_seq, self._skipped)
        self._skipped, self._unpersisted = [], 0
        self.position = self._applied_seq
        async with self._advanced:
            self._advanced.notify_all()

    def _fold_chunk(self, chunk: list[RawRecord]) -> list[dict[str, Any]]:
        projection, state = self.projection, self.state
        skipped = []
        for record in chunk:
            if not projection.accepts(record.subject):
                continue
            try:
                event = decode_on(record.subject, record.data)
            except EventDecodeError as exc:
                skipped.append(
                    {
                        "projection": projection.name,
                        "seq": record.seq,
                        "subject": record.subject,
                        "error": str(exc),
                    }
                )
                log.warning(
                    "projection_skipped_malformed",
                    projection=projection.name,
                    seq=record.seq,
                    error=str(exc),
                )
                continue
            stored = StoredEvent(record.stream, record.seq, record.subject, record.time, event)
            state = projection.apply(state, stored)
            self.applied += 1
        self.state = state
        return skipped

    def _persist(self, last_seq: int, skipped: list[dict[str, Any]]) -> None:
        changes = self.state.take_changes()
        with self.db.atomic():
            for name, (upserts, deletes) in changes.items():
                write_rows(self.db, self.state.schema[name], upserts, deletes)
            # plain statements: sqlite-utils' upsert inspects the schema on every call, which
            # cost a live follower (one transaction per event) more than the fold itself
            if skipped:
                self.db.conn.executemany(
                    f"INSERT OR REPLACE INTO [{SKIPPED}] (projection, seq, subject, error) "
                    "VALUES (:projection, :seq, :subject, :error)",
                    skipped,
                )
            self.db.conn.execute(
                f"INSERT OR REPLACE INTO [{CHECKPOINTS}] (projection, stream, last_seq, "
                "updated_at) VALUES (?, ?, ?, ?)",
                (self.projection.name, self.projection.stream, last_seq,
                 datetime.now().astimezone().isoformat()),
            )  # fmt: skip
