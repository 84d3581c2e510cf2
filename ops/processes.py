"""Processes `ringloop up` starts (its nats-server, its handler children) never outlive it
unnoticed: they die with it, and a rerun ends any that an earlier, killed `up` left behind.

- Linux: each child asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG via
  prctl, set between fork and exec); SIGTERM drains a handler and flushes the server.
- Everywhere: `up` records each child (pid, start time, its own pid) under
  `state_dir/pids/`; a rerun ends recorded processes whose owner is gone (`end_orphans`),
  checking the start time so that a reused pid is never signalled.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

import psutil
import structlog

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1
ORPHAN_GRACE_S = 10.0  # an orphan asked to stop (SIGTERM) is killed after this long


def die_with_parent() -> None:
    """`preexec_fn` for subprocess.Popen: SIGTERM this child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def pids_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "pids"


def record(state_dir: Path, name: str, pid: int) -> Path:
    """Remember a child of this process, so a rerun can end it if this process dies."""
    folder = pids_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    owner = psutil.Process()
    entry = {
        "name": name,
        "pid": pid,
        "started": psutil.Process(pid).create_time(),
        "owner": owner.pid,
        "owner_started": owner.create_time(),
    }
    path = folder / f"{name}-{pid}.json"
    path.write_text(json.dumps(entry))
    return path


def forget(state_dir: Path, name: str, pid: int) -> None:
    (pids_dir(state_dir) / f"{name}-{pid}.json").unlink(missing_ok=True)


def _same_process(pid: int, started: float) -> psutil.Process | None:
    """The process `pid` if it is the one started at `started` (not a reused pid)."""
    try:
        process = psutil.Process(pid)
        return process if abs(process.create_time() - started) < 0.01 else None
    except psutil.Error:
        return None


def end_orphans(state_dir: Path) -> list[str]:
    """End recorded children whose owner is gone; forget records of exited ones. Returns
    a description of each process ended."""
    ended = []
    for path in sorted(pids_dir(state_dir).glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if _same_process(entry["owner"], entry["owner_started"]) is not None:
            continue  # its owner still runs and supervises it
        process = _same_process(entry["pid"], entry["started"])
        if process is not None:
            _end(process)
            ended.append(f"{entry['name']} pid {entry['pid']}")
            log.warning(
                "orphan_ended",
                message=f"ended {entry['name']} pid {entry['pid']} left by a dead "
                f"`ringloop up` (pid {entry['owner']})",
            )
        path.unlink(missing_ok=True)
    return ended


def _end(process: psutil.Process) -> None:
    try:
        process.terminate()
        process.wait(ORPHAN_GRACE_S)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(ORPHAN_GRACE_S)
    except psutil.NoSuchProcess:
        pass
