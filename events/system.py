"""Process and host life-cycle events, and HandlerFailed, the dead letter of a poison input."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from events.envelope import Event


class DaemonStarted(Event):
    type: Literal["daemon.started"] = "daemon.started"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "daemon_started"
    daemon: str


class DaemonStopped(Event):
    type: Literal["daemon.stopped"] = "daemon.stopped"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "daemon_stopped"
    daemon: str
    reason: str = "shutdown"


class DaemonHeartbeat(Event):
    type: Literal["daemon.heartbeat"] = "daemon.heartbeat"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "heartbeat"
    daemon: str
    stats: dict[str, float] = Field(default_factory=dict)


class HostOnline(Event):
    type: Literal["host.online"] = "host.online"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "host_online"
    host: str
    cpus: int = 0
    gpus: list[str] = Field(default_factory=list)


class HostOffline(Event):
    type: Literal["host.offline"] = "host.offline"
    version: Literal[1] = 1
    domain: ClassVar[str] = "system"
    subject_name: ClassVar[str] = "host_offline"
    host: str
    reason: str = "shutdown"


class HandlerFailed(Event):
    """A poison or exhausted input, dead-lettered on ``loop.dlq.<handler>``."""

    type: Literal["handler.failed"] = "handler.failed"
    version: Literal[1] = 1
    domain: ClassVar[str] = "dlq"
    handler: str
    error_type: str
    error: str
    input_stream: str
    input_seq: int
    input_subject: str
    input_event_id: str | None = None
    input_excerpt: str = Field(default="", description="the first 2 KiB of the raw input")
    deliveries: int = 1

    def subject(self) -> str:
        return f"loop.dlq.{self.handler}"
