"""The projection contract: a pure fold over stored events into keyed tables."""

from __future__ import annotations

from typing import ClassVar

from events.streams import LOG_STREAM
from projections.eventstore import StoredEvent
from projections.tables import Table, Tables


class Projection:
    """Subclasses name their stream, subject filter and tables, and define `apply`.

    `apply(state, stored)` is a fold step: no I/O and no clock (time comes from the
    stored event). Events a projection does not know are ignored.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1  # bump when apply changes meaning: old snapshots are refused
    stream: ClassVar[str] = LOG_STREAM
    subject_filter: ClassVar[str] = "loop.>"
    tables: ClassVar[tuple[Table, ...]]

    def initial(self) -> Tables:
        return Tables(self.tables)

    def accepts(self, subject: str) -> bool:
        """A cheap pre-filter on the subject, so unrelated events are not even decoded."""
        return True

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        raise NotImplementedError


def fold(projection: Projection, events: list[StoredEvent], state: Tables | None = None) -> Tables:
    """Fold events into a state (a fresh one by default)."""
    state = projection.initial() if state is None else state
    for stored in events:
        if projection.accepts(stored.subject):
            state = projection.apply(state, stored)
    return state
