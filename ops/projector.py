"""The projector: every read model folded from the log into the state folder's projections.db,
and a snapshot of each for handler processes to start from — inside `ringloop up`, or alone as
`ringloop run projector`. One per state folder: it holds the folder's projector lock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ops.app import App, ProjectorLock, projector_owner
from ops.wiring import PROJECTIONS
from projections.snapshot import SnapshotWriter, SnapshotWriters

PROJECTOR = "projector"  # its name among `up --handlers` and `ringloop run`'s handlers


@dataclass
class Projector:
    """Claims the state folder's projections.db, then follows every projection into it."""

    app: App
    lock: ProjectorLock = field(init=False)
    writers: SnapshotWriters | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = ProjectorLock(self.app.settings)

    def claim(self) -> str | None:
        """Take the lock; None when taken, else why not (who holds it)."""
        if self.lock.acquire():
            return None
        return (
            f"{self.app.settings.state_dir} is already served by "
            f"{projector_owner(self.app.settings)}"
        )

    def start(self) -> None:
        """Follow every projection into the file and publish their snapshots."""
        self.tasks = [self.app.projection_runner(name).start() for name in PROJECTIONS]
        every = self.app.settings.snapshots
        self.writers = SnapshotWriters(
            SnapshotWriter(self.app.runners[name], self.app.settings.projections_db,
                           every_events=every.every_events, every_s=every.every_s)
            for name in PROJECTIONS if every.enabled
        )  # fmt: skip

    async def wait(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; a projection that failed raises its error here."""
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, *self.tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def stop(self) -> None:
        """A last snapshot of each view (for handler processes), then the lock goes."""
        if self.writers is not None:
            await self.writers.stop()
            self.writers = None

    def release(self) -> None:
        self.lock.release()
