"""ringloop's events: the envelope, the catalogue, the codec and the subject/stream table."""

from events.catalogue import *  # noqa: F403
from events.catalogue import EVENT_TYPES
from events.codec import EventDecodeError, decode, decode_on, encode, upcast
from events.envelope import (
    ConfigName,
    Event,
    Producer,
    derive_event_id,
    new_event_id,
    process_producer,
)
from events.streams import GAMES_STREAM, LEASES_BUCKET, LOG_STREAM, MODELS_BUCKET, WORK_STREAM

__all__ = [
    "EVENT_TYPES",
    "ConfigName",
    "Event",
    "EventDecodeError",
    "decode_on",
    "GAMES_STREAM",
    "LEASES_BUCKET",
    "LOG_STREAM",
    "MODELS_BUCKET",
    "WORK_STREAM",
    "Producer",
    "decode",
    "derive_event_id",
    "encode",
    "new_event_id",
    "process_producer",
    "upcast",
] + [cls.__name__ for cls in EVENT_TYPES]
