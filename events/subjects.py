"""Subjects of an event class: what a consumer of that class filters on, and in which stream.

Derived from the class itself (its `domain` and `subject_name`, or its own `subject()` for
games and work items), so the wiring never spells a subject out.
"""

from __future__ import annotations

from events.catalogue import EvalGameRequested, GameCompleted
from events.envelope import Event
from events.streams import STREAM_SUBJECTS, stream_for_subject

# Classes that choose their own subject (not `loop.<domain>.<name>[.<config>]`).
_OWN_SUBJECTS: dict[type[Event], tuple[str, ...]] = {
    GameCompleted: ("games.>",),
    EvalGameRequested: ("work.eval.>",),
}


def subject_filters(event_cls: type[Event]) -> tuple[str, ...]:
    """The subject filters that match every event of a class (and no other class)."""
    if event_cls in _OWN_SUBJECTS:
        return _OWN_SUBJECTS[event_cls]
    if not event_cls.domain or not event_cls.subject_name:
        raise ValueError(f"{event_cls.__name__} names no subject (domain and subject_name)")
    base = f"loop.{event_cls.domain}.{event_cls.subject_name}"
    config = event_cls.model_fields.get("config")
    if config is None:
        return (base,)
    return (f"{base}.>",) if config.is_required() else (base, f"{base}.>")


def stream_of(event_cls: type[Event]) -> str:
    """The stream that stores a class's events."""
    streams = {stream_for_subject(subject) for subject in subject_filters(event_cls)}
    if len(streams) != 1:  # pragma: no cover - the table above keeps one stream per class
        raise ValueError(f"{event_cls.__name__} spans streams {sorted(streams)}")
    return streams.pop()


__all__ = ["STREAM_SUBJECTS", "stream_of", "subject_filters"]
