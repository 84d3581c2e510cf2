"""Projection state as keyed rows: what a fold updates and what the runner persists."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

Row = dict[str, Any]
Key = tuple[Any, ...]


@dataclass(frozen=True)
class Table:
    """A read-model table: its columns (name → Python type) and primary key."""

    name: str
    columns: Mapping[str, type]
    pk: tuple[str, ...]
    _pick_key: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        getter = itemgetter(*self.pk)
        single = len(self.pk) == 1
        object.__setattr__(self, "_pick_key", (lambda row: (getter(row),)) if single else getter)

    def key(self, row: Row) -> Key:
        return self._pick_key(row)  # type: ignore[no-any-return]


class Tables:
    """Rows of a projection's tables, keyed by primary key, remembering what changed.

    A fold uses a Tables linearly: the runner never reuses a state after passing it to
    apply, so apply may update it in place (copying per event would make rebuilds O(n²)).

    A table may be *deferred* (see `defer`): its stored rows are built on the first read,
    so a process that never reads a big table (the Elo history, in the elo-rater) never
    pays for it. Writes before that first read are kept and win over the stored rows.
    """

    def __init__(self, schema: tuple[Table, ...]) -> None:
        self.schema = {table.name: table for table in schema}
        self.data: dict[str, dict[Key, Row]] = {table.name: {} for table in schema}
        self._upserts: dict[str, set[Key]] = {table.name: set() for table in schema}
        self._deletes: dict[str, set[Key]] = {table.name: set() for table in schema}
        self._deferred: dict[str, Callable[[], dict[Key, Row]]] = {}

    def defer(self, table: str, loader: Callable[[], dict[Key, Row]]) -> None:
        """Let `loader()` (rows by key) fill the table when it is first read."""
        if self.data[table] or table in self._deferred:
            raise ValueError(f"table {table!r} already holds rows; only an empty one can defer")
        self._deferred[table] = loader

    @property
    def deferred(self) -> frozenset[str]:
        """Tables whose stored rows are not built yet."""
        return frozenset(self._deferred)

    def _materialize(self, table: str) -> dict[Key, Row]:
        loader = self._deferred.pop(table, None)
        if loader is not None:
            rows = loader()
            rows.update(self.data[table])  # written after the stored rows: newer
            self.data[table] = rows
        return self.data[table]

    def get(self, table: str, *key: Any) -> Row | None:
        rows = self._materialize(table) if table in self._deferred else self.data[table]
        return rows.get(tuple(key))

    def put(self, table: str, row: Row) -> None:
        key = self.schema[table].key(row)
        self.data[table][key] = row
        self._upserts[table].add(key)
        self._deletes[table].discard(key)

    def delete(self, table: str, *key: Any) -> None:
        if self._materialize(table).pop(tuple(key), None) is not None:
            self._deletes[table].add(tuple(key))
            self._upserts[table].discard(tuple(key))

    def rows(self, table: str) -> Iterator[Row]:
        return iter(self._materialize(table).values())

    def count(self, table: str) -> int:
        return len(self._materialize(table))

    def take_changes(self) -> dict[str, tuple[list[Row], list[Key]]]:
        """Rows to upsert and keys to delete since the last call, per table."""
        changes = {}
        for name, keys in self._upserts.items():
            upserts = [self.data[name][key] for key in keys]
            deletes = list(self._deletes[name])
            if upserts or deletes:
                changes[name] = (upserts, deletes)
            keys.clear()
            self._deletes[name].clear()
        return changes

    def snapshot(self) -> dict[str, list[Row]]:
        """Every row, sorted by key: two states are equal iff their snapshots are."""
        return {
            name: [rows[key] for key in sorted(rows, key=_sort_key)]
            for name, rows in ((name, self._materialize(name)) for name in self.data)
        }

    def load(self, table: str, rows: list[Row]) -> None:
        target = self._materialize(table)
        for row in rows:
            target[self.schema[table].key(row)] = row


def _sort_key(key: Key) -> tuple[str, ...]:
    return tuple(str(part) for part in key)
