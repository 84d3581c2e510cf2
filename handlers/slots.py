"""Cluster slots of the play stages: a coordinator lease held around long work (a training, a
selfplay worker's batches), refused as SlotBusy (wait) and lost as SlotLost (publish nothing).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from handlers.coordinator import KeptLease, TaskCoordinator, TaskRefusedError
from handlers.runtime import TransientError, Waiting


class SlotBusy(Waiting):
    """Every slot of the task type is taken (TaskRefused was appended): retried later."""


class SlotLost(TransientError):
    """The slot's lease expired or was taken: the work's result is not published."""


@contextlib.asynccontextmanager
async def task_slot(
    tasks: TaskCoordinator | None, task_type: str, task_id: str
) -> AsyncIterator[KeptLease | None]:
    """Hold a cluster slot for the block (none without a coordinator); SlotBusy when refused."""
    if tasks is None:
        yield None
        return
    async with contextlib.AsyncExitStack() as stack:
        try:
            kept = await stack.enter_async_context(tasks.task(task_type, task_id))
        except TaskRefusedError as exc:
            raise SlotBusy(str(exc)) from exc
        yield kept


async def ensure_held(kept: KeptLease | None, work: str) -> None:
    """Raise SlotLost unless the lease still holds its key (checked on the bus, not only by
    the renewal): called right before a result is published."""
    if kept is None:
        return
    _, holder = await kept.leases.read(kept.lease.key)
    if kept.lost.is_set() or holder != kept.lease.holder:
        raise SlotLost(f"{work} lost its slot {kept.lease.key!r}; its result is not published")
