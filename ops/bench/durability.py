"""Durability of appends (a part of `ringloop bench events`): appends/s and the loss window of
the embedded default, `sync_interval: always`, and R3 on a loopback 3-node cluster.

Per setup: sequential appends (one awaited ack each, as the handler runtime appends) and
pipelined ones (`append_many`), then a crash trial: a sequential appender runs, the server
(R3: the log stream's leader node) is killed with SIGKILL mid-stream and restarted, the
appender retries each event under its own id until it is acknowledged, and afterwards every
acknowledged event is looked for in the stream (lost, duplicated) and the longest pause
between two acknowledgements is reported. A host or power failure cannot be staged here; its
window is the time acknowledged appends may sit unsynced: nats-server's fsync interval
(2 min by default; 0 with `always`) or the kernel's writeback of dirty pages, whichever
comes first, on every node at once for R3.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client

from events import LOG_STREAM, Event
from ops.bus import connect, ensure_streams
from ops.cluster import LoopbackCluster
from ops.settings import NatsSettings, StreamSettings
from projections.eventstore import EventStore

NATS_DEFAULT_SYNC_S = 120.0  # nats-server's documented default JetStream sync_interval
READY_TIMEOUT_S = 30.0
APPEND_TIMEOUT_S = 1.0  # per try in the crash trial; a try that times out is retried
RETRY_PAUSE_S = 0.05


def single_server(folder: Path, *, sync_always: bool = False) -> LoopbackCluster:
    """The embedded default's shape: one plain nats-server with JetStream."""
    return LoopbackCluster.create(folder, 1, sync_always=sync_always)


def loopback_cluster(
    folder: Path, nodes: int = 3, *, sync_always: bool = False, name: str = "ringloop-bench"
) -> LoopbackCluster:
    """`nodes` nats-servers on 127.0.0.1 routed to each other (ops.cluster), a store each;
    streams on it take replicas = nodes."""
    return LoopbackCluster.create(folder, nodes, sync_always=sync_always, name=name)


async def wait_for_jetstream(nc: Client, timeout: float = READY_TIMEOUT_S) -> None:
    """Until JetStream answers (a cluster first elects its meta leader)."""
    deadline = time.monotonic() + timeout
    js = nc.jetstream(timeout=2)
    while True:
        try:
            await js.account_info()
            return
        except (nats.errors.Error, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def set_up_streams(nc: Client, replicas: int, timeout: float = READY_TIMEOUT_S) -> None:
    """ensure_streams, retried while a fresh cluster still places its first streams."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await ensure_streams(nc.jetstream(timeout=5), StreamSettings(), replicas=replicas)
            return
        except (nats.errors.Error, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


# ------------------------------------------------------------------ measurements


def events_for(count: int, seed: int) -> list[Event]:
    from ops.bench.events import match_pair

    rng = random.Random(seed)
    events: list[Event] = []
    for index in range(count // 2):
        events.extend(match_pair(seed * 10_000_000 + index, rng))
    return events


async def throughput(store: EventStore, sequential: int, pipelined: int) -> dict[str, float]:
    one_by_one = events_for(sequential, 11)
    start = time.perf_counter()
    for event in one_by_one:
        await store.append(event)
    sync_rate = len(one_by_one) / (time.perf_counter() - start)
    bulk = events_for(pipelined, 12)
    start = time.perf_counter()
    for offset in range(0, len(bulk), 5_000):
        await store.append_many(bulk[offset : offset + 5_000])
    return {"sync_per_s": sync_rate, "pipelined_per_s": len(bulk) / (time.perf_counter() - start)}


@dataclass
class Appender:
    """Appends events one by one, retrying each (same id) until acknowledged."""

    store: EventStore
    events: list[Event]
    acked: list[str] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)
    failed_tries: int = 0

    async def run(self, deadline: float) -> None:
        for event in self.events:
            while True:
                try:
                    await self.store.append(event)
                    break
                except (nats.errors.Error, TimeoutError, OSError):
                    self.failed_tries += 1
                    if time.monotonic() > deadline:
                        return
                    await asyncio.sleep(RETRY_PAUSE_S)
            self.acked.append(event.event_id)
            self.ack_times.append(time.monotonic())


async def crash_trial(
    cluster: LoopbackCluster, client_url: str, victim: str, *, events: int, kill_after: int
) -> dict[str, Any]:
    """Kill node `victim` with SIGKILL after `kill_after` acknowledged appends, restart it, let
    the appender finish, then look for every acknowledged event in the stream."""
    nc = await connect(NatsSettings(), client_url)
    store = EventStore(nc, timeout=APPEND_TIMEOUT_S)
    appender = Appender(store, events_for(events, 13))
    task = asyncio.create_task(appender.run(time.monotonic() + 120))
    while len(appender.acked) < kill_after and not task.done():
        await asyncio.sleep(0.01)
    acked_at_kill = len(appender.acked)
    killed_at = time.monotonic()
    cluster.kill(victim)  # SIGKILL: no flush, no goodbye to the cluster
    if cluster.replicas > 1:  # the others go on without it for as many appends again
        while len(appender.acked) < 2 * acked_at_kill and not task.done():
            if time.monotonic() - killed_at > READY_TIMEOUT_S:
                break
            await asyncio.sleep(0.01)
    acked_while_down = len(appender.acked) - acked_at_kill
    restarted_at = time.monotonic()
    await asyncio.to_thread(cluster.restart, victim)
    await task
    if cluster.replicas > 1:
        await wait_current(store)
    stored = await stored_ids(store)
    await nc.close()
    after = [t for t in appender.ack_times if t > killed_at]
    gaps = [(b - a, a) for a, b in zip(appender.ack_times, appender.ack_times[1:], strict=False)]
    pause, pause_from = max(gaps, default=(0.0, killed_at))
    return {
        "acked": len(appender.acked),
        "acked_at_kill": acked_at_kill,
        "acked_while_down": acked_while_down,
        "lost": len(set(appender.acked) - set(stored)),
        "duplicated": len(stored) - len(set(stored)),
        "first_ack_after_kill_s": (after[0] - killed_at) if after else None,
        "longest_pause_s": pause,
        "pause_began_after_kill_s": pause_from - killed_at,
        "restarted_after_s": restarted_at - killed_at,
        "failed_tries": appender.failed_tries,
    }


async def stored_ids(store: EventStore) -> list[str]:
    ids = []
    async for chunk in store.read_raw(LOG_STREAM, "loop.>"):
        ids += [json.loads(record.data)["event_id"] for record in chunk]
    return ids


async def wait_current(store: EventStore, timeout: float = READY_TIMEOUT_S) -> None:
    """Until every replica of the log reports itself current (the restarted node caught up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = await store.js.stream_info(LOG_STREAM)
        except (nats.errors.Error, TimeoutError):
            await asyncio.sleep(0.2)
            continue
        replicas = (info.cluster.replicas if info.cluster else None) or []
        if info.cluster and info.cluster.leader and all(r.current for r in replicas):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the replicas of {LOG_STREAM} did not catch up within {timeout}s")


async def leader_of(store: EventStore) -> str:
    info = await store.js.stream_info(LOG_STREAM)
    assert info.cluster is not None and info.cluster.leader is not None
    return str(info.cluster.leader)


def writeback_s() -> float:
    """The kernel's bound on how long a dirty page waits (expire + flusher period)."""
    try:
        expire = int(Path("/proc/sys/vm/dirty_expire_centisecs").read_text())
        period = int(Path("/proc/sys/vm/dirty_writeback_centisecs").read_text())
    except (OSError, ValueError):
        return NATS_DEFAULT_SYNC_S
    return (expire + period) / 100


async def measure_setup(
    label: str, cluster: LoopbackCluster, *, sync_always: bool, args: Any
) -> dict[str, Any]:
    cluster.start()
    try:
        setup = await connect(NatsSettings(), cluster.urls[0])
        await wait_for_jetstream(setup)
        await set_up_streams(setup, cluster.replicas)
        store = EventStore(setup, timeout=60)
        if cluster.replicas > 1:
            await wait_current(store)
        result: dict[str, Any] = {"setup": label, "replicas": cluster.replicas}
        result.update(await throughput(store, args.durability_sync, args.durability_pipelined))
        victim = cluster.nodes[0].name
        client_url = cluster.urls[0]
        if cluster.replicas > 1:  # kill the log's leader; append through another node
            victim = await leader_of(store)
            client_url = next(node.url for node in cluster.nodes if node.name != victim)
        await setup.close()
        result["killed"] = victim
        trial = await crash_trial(
            cluster, client_url, victim, events=args.durability_trial, kill_after=args.durability_trial // 4
        )  # fmt: skip
        result.update({f"crash_{key}": value for key, value in trial.items()})
        unsynced = 0.0 if sync_always else min(NATS_DEFAULT_SYNC_S, writeback_s())
        result["power_loss_window_s"] = unsynced
        result["power_loss_events"] = unsynced * result["sync_per_s"]
        return result
    finally:
        cluster.stop()


async def run_durability(args: Any, folder: Path) -> list[dict[str, Any]]:
    setups = [
        ("embedded default", single_server(folder / "default"), False),
        ("sync_interval: always", single_server(folder / "always", sync_always=True), True),
        ("R3, loopback 3-node cluster", loopback_cluster(folder / "r3"), False),
    ]
    return [
        await measure_setup(label, cluster, sync_always=always, args=args)
        for label, cluster, always in setups
    ]


def render(rows: list[dict[str, Any]]) -> list[str]:
    baseline = rows[0]
    lines = []
    for row in rows:
        pause = row["crash_longest_pause_s"]
        lines.append(
            f"durability {row['setup']}: sync appends {row['sync_per_s']:,.0f}/s "
            f"({row['sync_per_s'] / baseline['sync_per_s']:.2f} of default), pipelined "
            f"{row['pipelined_per_s']:,.0f}/s ({row['pipelined_per_s'] / baseline['pipelined_per_s']:.2f}); "
            f"kill -9 of {row['killed']} after {row['crash_acked_at_kill']:,} acks: "
            f"{row['crash_acked_while_down']:,} acked while it was down, "
            f"{row['crash_lost']} of {row['crash_acked']:,} acknowledged lost, "
            f"{row['crash_duplicated']} duplicated, longest pause {pause:.2f} s; "
            f"power-loss window {row['power_loss_window_s']:.0f} s "
            f"(≈{row['power_loss_events']:,.0f} sequential appends"
            + (", on every node at once)" if row["replicas"] > 1 else ")")
        )
    return lines
