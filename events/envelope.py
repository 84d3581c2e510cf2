"""The envelope every event carries (identity, time, causality, producer); the payload-part base."""

from __future__ import annotations

import builtins
import functools
import hashlib
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from events.config import CONFIG_PATTERN as CONFIG_PATTERN  # re-exported: older imports
from events.config import ConfigName as ConfigName

E = TypeVar("E", bound="Event")


def new_event_id() -> str:
    """A UUIDv7 string: 48-bit millisecond timestamp then random bits, so ids sort by time."""
    millis = time.time_ns() // 1_000_000
    raw = bytearray(millis.to_bytes(6, "big") + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x70
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


def derive_event_id(parent_id: str, tag: str) -> str:
    """A deterministic id for an output of `parent_id`: same input + tag gives the same id.

    It keeps the parent's timestamp prefix (so derived ids still sort by time) and fills the
    rest from a hash of parent and tag, so a redelivered input republishes identical ids
    and JetStream's duplicate window drops the copies.
    """
    try:
        parent = uuid.UUID(parent_id).bytes
    except ValueError:  # not a UUID (e.g. "stream/seq" of an undecodable message)
        parent = bytes(6) + hashlib.sha256(parent_id.encode()).digest()[:10]
    digest = hashlib.sha256(parent + tag.encode()).digest()
    raw = bytearray(parent[:6] + digest[:10])
    raw[6] = (raw[6] & 0x0F) | 0x70
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


def utc_now() -> datetime:
    return datetime.now(UTC)


class Producer(BaseModel):
    """Who appended an event: the handler or tool, its host and process id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    host: str
    pid: int

    @classmethod
    def current(cls, name: str) -> Producer:
        return cls(name=name, host=socket.gethostname(), pid=os.getpid())


@functools.cache
def process_producer(name: str) -> Producer:
    """The Producer for `name` in this process, built once (host and pid do not change)."""
    return Producer.current(name)


class Part(BaseModel):
    """Base of nested payload parts: frozen and strict like events."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(BaseModel):
    """Base of every event: frozen, strict, with an explicit wire type and schema version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Subclasses narrow these two to Literals.
    type: str
    version: int
    event_id: str = Field(default_factory=new_event_id)
    occurred_at: datetime = Field(default_factory=utc_now)
    causation_id: str | None = None
    correlation_id: str | None = None
    producer: Producer = Field(default_factory=lambda: Producer.current("ringloop"))

    # `loop.<domain>.<name>` for the log stream; games override subject().
    domain: ClassVar[str] = ""
    subject_name: ClassVar[str] = ""

    def subject(self) -> str:
        """The JetStream subject this event is appended to."""
        base = f"loop.{self.domain}.{self.subject_name}"
        config = getattr(self, "config", None)
        return f"{base}.{config}" if config else base

    def caused(self, event_cls: builtins.type[E], tag: str, **fields: Any) -> E:
        """Build an event caused by this one, with an id derived from this event's id."""
        return event_cls(
            event_id=derive_event_id(self.event_id, tag),
            causation_id=self.event_id,
            correlation_id=self.correlation_id or self.event_id,
            **fields,
        )
