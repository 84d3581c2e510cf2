"""The task coordinator's events: a leased task started, finished, or refused by its limits."""

from __future__ import annotations

from typing import ClassVar, Literal

from events.envelope import Event


class TaskStarted(Event):
    type: Literal["task.started"] = "task.started"
    version: Literal[1] = 1
    domain: ClassVar[str] = "task"
    subject_name: ClassVar[str] = "started"
    task_id: str
    task_type: str
    lease_key: str
    holder: str
    fencing_token: int


class TaskFinished(Event):
    type: Literal["task.finished"] = "task.finished"
    version: Literal[1] = 1
    domain: ClassVar[str] = "task"
    subject_name: ClassVar[str] = "finished"
    task_id: str
    task_type: str
    outcome: Literal["succeeded", "failed", "cancelled", "expired"]


class TaskRefused(Event):
    type: Literal["task.refused"] = "task.refused"
    version: Literal[1] = 1
    domain: ClassVar[str] = "task"
    subject_name: ClassVar[str] = "refused"
    task_type: str
    reason: str
    holder: str | None = None
