"""`up`'s child supervisor (ops.children.Children) on real processes: a child failing by itself
is given up after max_restarts in a row; one killed by a signal from outside is restarted
every time, after a backoff that grows while the kills go on."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from ops.children import RESTART_BACKOFF_MAX_S, Children


def supervisor(script: str, max_restarts: int = 3) -> Children:
    children = Children(["probe"], [], max_restarts=max_restarts)
    children.children[0].argv = [sys.executable, "-c", script]
    return children


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.allow_error_logs
async def test_a_child_failing_by_itself_is_given_up_after_max_restarts(
    error_logs_fail: Any,
) -> None:
    children = supervisor("import sys; sys.exit(1)", max_restarts=3)
    pids: set[int] = set()
    original = children._spawn

    def spawn(child):  # type: ignore[no-untyped-def]
        original(child)
        pids.add(child.process.pid)

    children._spawn = spawn  # type: ignore[method-assign]
    children.start()
    task = asyncio.create_task(children.supervise())
    try:
        await wait_for(lambda: children.children[0].process is None, 60, "the child given up")
        assert len(pids) == 1 + 3  # the first start and three restarts
        given_up = [e for e in error_logs_fail.entries if e["event"] == "child_given_up"]
        assert [(e["handler"], e["returncode"]) for e in given_up] == [("probe", 1)]
    finally:
        await children.stop(timeout=10)
        task.cancel()


async def test_a_child_killed_from_outside_is_always_restarted_with_a_growing_backoff() -> None:
    children = supervisor("import time; time.sleep(600)", max_restarts=1)
    child = children.children[0]
    children.start()
    task = asyncio.create_task(children.supervise())
    gaps = []
    try:
        for _ in range(4):  # more kills than max_restarts allows failures
            await wait_for(lambda: child.process is not None and child.process.poll() is None,
                           60, "the child running")  # fmt: skip
            victim = child.process
            assert victim is not None
            os.kill(victim.pid, signal.SIGKILL)
            killed = time.monotonic()
            await wait_for(lambda victim=victim: child.process is not victim or
                           (child.process is not None and child.process.pid != victim.pid),
                           60, "a restart")  # fmt: skip
            gaps.append(time.monotonic() - killed)
        assert child.killed == 4 and child.restarts == 0
        # backoffs 0.5, 1, 2, 4 s (the supervisor looks every 0.5 s): each restart waited at
        # least its backoff, and the fourth longer than the first
        for gap, backoff in zip(gaps, (0.5, 1.0, 2.0, 4.0), strict=True):
            assert gap >= backoff - 0.05, gaps
        assert gaps[3] > gaps[0] and 4.0 <= RESTART_BACKOFF_MAX_S
    finally:
        await children.stop(timeout=10)
        task.cancel()
