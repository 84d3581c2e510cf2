"""Child processes of `ringloop up`: the CPU-heavy stages each get a process of their own.

In one process the selfplay search, the trainer and the evaluator would share one GIL
(and torch's spinning OpenMP threads would fight them for the cores). As children they
run in parallel, exactly as `ringloop run <handler>` runs them on other hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import structlog

from ops.processes import die_with_parent, forget, record

log = structlog.get_logger(__name__)

RESTART_WINDOW_S = 60.0  # a child that ran this long before dying starts a fresh restart budget
RESTART_BACKOFF_MAX_S = 10.0  # the longest wait before restarting a child killed by a signal

BUS_FLAGS = {
    "state_dir": "--state-dir",
    "settings": "--settings",
    "user": "--user",
    "password": "--password",
    "creds": "--creds",
    "nkey": "--nkey",
    "tls_ca": "--tls-ca",
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
    "replicas": "--replicas",
    "log_level": "--log-level",
    "profile": "--profile",
}


def child_arguments(args: argparse.Namespace, url: str) -> list[str]:
    """The options a child needs to reach the same bus with the same settings."""
    argv = ["--nats", url]
    for attribute, flag in BUS_FLAGS.items():
        value = getattr(args, attribute, None)
        if value is not None:
            argv += [flag, str(value)]
    return argv


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0  # failures of its own (an exit status > 0) in a row
    killed: int = 0  # deaths by a signal from outside in a row
    restart_at: float | None = None  # when a killed child is started again
    started_at: float = field(default_factory=time.monotonic)


class Children:
    """Starts, watches (restarting a crashed child a few times) and stops child handlers."""

    def __init__(
        self,
        names: list[str],
        common: list[str],
        *,
        max_restarts: int = 5,
        state_dir: Path | None = None,
    ) -> None:
        env = {**os.environ}
        env.setdefault("OMP_NUM_THREADS", "1")  # one core each; no spinning thread pools
        self.env = env
        self.max_restarts = max_restarts
        self.children = [
            Child(name, [sys.executable, "-m", "ops", "run", name, *common]) for name in names
        ]
        self.state_dir = state_dir  # where each child is recorded (see ops.processes)
        self._stopping = False

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        """Start a child that dies with this process (and is recorded for a rerun to end)."""
        if child.process is not None and self.state_dir is not None:
            forget(self.state_dir, child.name, child.process.pid)
        child.process = subprocess.Popen(
            child.argv,
            env=self.env,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        child.started_at = time.monotonic()
        if self.state_dir is not None:
            try:
                record(self.state_dir, child.name, child.process.pid)
            except psutil.Error:  # it died at once; supervise() restarts it
                pass
        log.info("child_started", handler=child.name, pid=child.process.pid)

    async def supervise(self) -> None:
        """Restart children that die on their own (not when we stop them).

        A child that fails by itself (an exit status > 0) is restarted at once, at most
        `max_restarts` times in a row within RESTART_WINDOW_S of each start: a crash loop is
        given up. One killed by a signal from outside (kill -9, the OOM killer) is always
        restarted, after a backoff doubling from 0.5 s to RESTART_BACKOFF_MAX_S while it keeps
        being killed soon after starting."""
        while not self._stopping:
            for child in self.children:
                process = child.process
                if process is None or process.poll() is None or self._stopping:
                    continue
                now = time.monotonic()
                if child.restart_at is None:
                    if now - child.started_at > RESTART_WINDOW_S:
                        child.restarts = child.killed = 0  # it ran a good while: isolated
                    if process.returncode < 0:
                        child.killed += 1
                        delay = min(RESTART_BACKOFF_MAX_S, 0.5 * 2 ** (child.killed - 1))
                        child.restart_at = now + delay
                    elif child.restarts >= self.max_restarts:
                        log.error(
                            "child_given_up", handler=child.name, returncode=process.returncode
                        )
                        child.process = None
                        continue
                    else:
                        child.restarts += 1
                        child.restart_at = now
                if now >= child.restart_at:
                    child.restart_at = None
                    log.warning(
                        "child_restarted", handler=child.name, returncode=process.returncode
                    )
                    self._spawn(child)
            await asyncio.sleep(0.5)

    async def stop(self, timeout: float = 120.0) -> None:
        """SIGTERM every child (each drains its event in hand), SIGKILL after `timeout`."""
        self._stopping = True
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                await asyncio.to_thread(process.wait, remaining)
            except subprocess.TimeoutExpired:
                log.warning("child_killed", pid=process.pid)
                process.kill()
                await asyncio.to_thread(process.wait)
        if self.state_dir is not None:
            for child in self.children:
                if child.process is not None:
                    forget(self.state_dir, child.name, child.process.pid)
