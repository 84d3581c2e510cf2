"""Connecting and setting up: several URLs, failing fast, read-only commands that never set
up; recovery: stale loop leases taken over, children dying with their parent, leftovers
ended, nats.url kept while someone else's server serves it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from nats.js.errors import NotFoundError

from events import LOG_STREAM
from handlers.coordinator import (
    LOOP_KEY,
    Holder,
    LeaseClient,
    LeaseLost,
    LoopAlreadyRunning,
    acquire_loop_lease,
)
from handlers.settings import LoopSettings
from ops.app import App, stop_embedded, url_file
from ops.cli import build_parser, main
from ops.commands._common import settings_from
from ops.processes import end_orphans, pids_dir
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings


def test_several_urls_comma_separated_or_repeated() -> None:
    args = build_parser("status").parse_args(
        ["status", "--nats", "nats://127.0.0.1:4222", "--nats", "10.0.0.2:4223,tls://h:4224"]
    )
    assert settings_from(args).nats.servers == [
        "nats://127.0.0.1:4222",
        "nats://10.0.0.2:4223",
        "tls://h:4224",
    ]


def test_a_bad_url_is_one_line_quoting_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--nats", "nats://a:1,http://b:2"]) == 2
    err = capsys.readouterr().err
    assert "'http://b:2'" in err and len(err.strip().splitlines()) == 1


def test_unreachable_nats_fails_at_once_naming_the_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = "nats://127.0.0.1:1,nats://127.0.0.1:2"
    assert main(["status", "--nats", urls, "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot connect to NATS at {urls}" in err and "no server answered" in err


def test_read_only_commands_never_create_a_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmbeddedServer(tmp_path / "store") as server:
        base = ["--nats", server.url, "--state-dir", str(tmp_path / "state")]
        assert main(["status", *base]) == 0
        assert "missing" in capsys.readouterr().out
        assert main(["replay", "--check", *base]) == 0  # nothing live, nothing to compare
        assert "0 difference(s)" in capsys.readouterr().out
        assert main(["leaderboard", "--config", "square8_2p", *base]) == 2
        assert "not set up" in capsys.readouterr().err
        assert main(["tail", "loop.>", "--all", "--count", "1", *base]) == 2
        assert "not set up" in capsys.readouterr().err

        async def streams() -> list[str]:
            import nats

            nc = await nats.connect(server.url)
            try:
                await nc.jetstream().stream_info(LOG_STREAM)
            except NotFoundError:
                return []
            finally:
                await nc.close()
            return [LOG_STREAM]

        assert asyncio.run(streams()) == []


# ------------------------------------------------------------ the loop lease


def gone_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def plant(leases: LeaseClient, holder: Holder, ttl_s: float = 3600) -> int:
    """Write `holder` as the loop lease's owner (TTL as given: the server keeps it)."""
    seq, _ = await leases.read(LOOP_KEY)
    return await leases._publish(LOOP_KEY, holder, expected=seq, ttl_s=ttl_s)


def loop_settings(ttl: float = 15) -> LoopSettings:
    return LoopSettings(tasks={"loop_lease_ttl_s": ttl, "renew_every_s": 1})


async def free_the_lease(leases: LeaseClient) -> None:
    seq, holder = await leases.read(LOOP_KEY)
    if holder is not None:
        kv = await leases.js.key_value(leases.bucket)
        await kv.delete(LOOP_KEY, last=seq)


async def test_a_dead_holders_loop_lease_is_taken_over_and_fenced(app: App) -> None:
    leases = LeaseClient(app.store)
    await free_the_lease(leases)
    dead = Holder(Holder.current().host, gone_pid(), "2026-01-01T00:00:00+00:00")
    token = await plant(leases, dead)
    kept = await acquire_loop_lease(app.store, loop_settings())
    try:
        assert kept.lease.token > token
        assert (await leases.read(LOOP_KEY))[1] == kept.lease.holder
        stale = kept.lease.__class__(LOOP_KEY, token, dead, 15)
        with pytest.raises(LeaseLost):  # the old holder, were it alive, is fenced out
            await leases.renew(stale)
    finally:
        await kept.release()


async def test_a_live_holder_keeps_the_loop_lease(app: App) -> None:
    leases = LeaseClient(app.store)
    await free_the_lease(leases)
    alive = Holder(Holder.current().host, os.getppid(), "2026-01-01T00:00:00+00:00")
    await plant(leases, alive)
    with pytest.raises(LoopAlreadyRunning, match=f"pid {os.getppid()}"):
        await acquire_loop_lease(app.store, loop_settings())
    await free_the_lease(leases)


async def test_a_lease_unrenewed_past_its_ttl_by_the_servers_clock_is_taken_over(
    app: App,
) -> None:
    leases = LeaseClient(app.store)
    await free_the_lease(leases)
    elsewhere = Holder("another-host", 1, "2026-01-01T00:00:00+00:00")
    await plant(leases, elsewhere)  # its message outlives the 1 s TTL it claims
    with pytest.raises(LoopAlreadyRunning):
        await acquire_loop_lease(app.store, loop_settings(ttl=1))
    deadline = time.monotonic() + 30
    while True:  # the server's clock moves past the TTL
        try:
            kept = await acquire_loop_lease(app.store, loop_settings(ttl=1))
            break
        except LoopAlreadyRunning:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    await kept.release()


# ------------------------------------------------------------ processes


def test_a_child_dies_with_its_parent(tmp_path: Path) -> None:
    script = (
        "import subprocess, sys, time\n"
        "from ops.processes import die_with_parent\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
        " preexec_fn=die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[1]
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert psutil.Process(child).wait(30) is not None or not psutil.pid_exists(child)


def test_a_rerun_ends_what_a_dead_up_left_running(tmp_path: Path) -> None:
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    folder = pids_dir(tmp_path)
    folder.mkdir(parents=True)
    entry = {
        "name": "selfplay",
        "pid": leftover.pid,
        "started": psutil.Process(leftover.pid).create_time(),
        "owner": gone_pid(),
        "owner_started": 0.0,
    }
    (folder / f"selfplay-{leftover.pid}.json").write_text(json.dumps(entry))
    assert end_orphans(tmp_path) == [f"selfplay pid {leftover.pid}"]
    assert leftover.wait(10) is not None
    assert not list(folder.glob("*.json"))


def test_nats_url_is_removed_only_by_its_servers_owner(tmp_path: Path) -> None:
    settings: Settings = load_settings(None, state_dir=str(tmp_path))
    with EmbeddedServer(tmp_path / "store") as server:
        url_file(settings).write_text("nats://127.0.0.1:1")  # another server's, since
        stop_embedded(settings, server)
    assert url_file(settings).read_text() == "nats://127.0.0.1:1"


def test_cluster_up_and_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "cluster"
    assert main(["cluster", "up", "--nodes", "3", "--state", str(state)]) == 0
    try:
        urls = capsys.readouterr().out.strip().split(",")
        assert len(urls) == 3 and all(u.startswith("nats://127.0.0.1:") for u in urls)
        assert main(["cluster", "up", "--nodes", "3", "--state", str(state)]) == 0  # again: same
        assert capsys.readouterr().out.strip().split(",") == urls
    finally:
        assert main(["cluster", "down", "--state", str(state)]) == 0
    assert "stopped n1, n2, n3" in capsys.readouterr().out
