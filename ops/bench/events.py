"""`ringloop bench events`: append throughput, projection rebuild speed, append→projection latency,
and durability (ops.bench.durability: the embedded default, `sync_interval: always`, R3).

Everything runs against a fresh embedded nats-server in a temporary folder, and every figure
is printed beside a baseline measured in the same run on the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events import (
    LOG_STREAM,
    EloUpdated,
    Event,
    MatchCompleted,
    MatchParticipant,
    RatingChange,
    encode,
)
from handlers.settings import SnapshotSettings
from ops.bus import connect, ensure_streams
from ops.server import EmbeddedServer
from ops.settings import NatsSettings, StreamSettings
from projections.elo import EloProjection
from projections.eventstore import EventStore
from projections.runner import ProjectionRunner, open_db
from projections.snapshot import decode_rows, fetch_snapshot, write_snapshot

NAME = "events"
HELP = "event store and projection benchmarks (append, rebuild, latency)"
CONFIGS = ["square8_2p", "hex8_2p", "square8_3p", "hex8_4p"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--appends", type=int, default=20_000, help="events per append trial")
    parser.add_argument("--rebuild-events", type=int, default=1_000_000)
    parser.add_argument("--latency-samples", type=int, default=1_000)
    parser.add_argument(
        "--startup-tail",
        type=int,
        default=SnapshotSettings().every_events // 2,
        help="events appended after the snapshot before a handler process starts "
        "(default: half the snapshot cadence, the average tail)",
    )
    parser.add_argument("--durability-only", action="store_true", help="only the durability part")
    parser.add_argument("--durability-sync", type=int, default=2_000, help="sequential appends")
    parser.add_argument("--durability-pipelined", type=int, default=20_000)
    parser.add_argument("--durability-trial", type=int, default=4_000, help="crash trial appends")


def match_pair(index: int, rng: random.Random) -> tuple[MatchCompleted, EloUpdated]:
    """A realistic pair: a match and its rating update, between 40 participants."""
    config = CONFIGS[index % len(CONFIGS)]
    seats = int(config[-2])
    names = rng.sample([f"model-{i}" for i in range(40)], seats)
    ranks = {name: rank for rank, name in enumerate(names, 1)}
    match = MatchCompleted(
        config=config,
        match_id=f"bench-{index}",
        participants=[MatchParticipant(participant_id=n, rank=r, seat=r) for n, r in ranks.items()],
    )
    changes = [
        RatingChange(
            participant_id=n, before=1500.0, after=1500.0 + 8 * (seats - 2 * r + 1), rank=r
        )
        for n, r in ranks.items()
    ]
    update = match.caused(
        EloUpdated, "elo", config=config, match_id=match.match_id, changes=changes, k_factor=32.0
    )
    return match, update


async def bench_append(store: EventStore, count: int) -> dict[str, float]:
    rng = random.Random(1)
    events: list[Event] = []
    for index in range(count // 2):
        events.extend(match_pair(index, rng))
    payloads = [(e.subject(), encode(e), e.event_id) for e in events]

    async def raw() -> float:
        start = time.perf_counter()
        futures = [
            await store.js.publish_async(
                subject, data, headers={"Nats-Msg-Id": event_id + "-raw" + str(start)}
            )
            for subject, data, event_id in payloads
        ]
        await asyncio.gather(*futures)
        return len(payloads) / (time.perf_counter() - start)

    async def ours() -> float:
        fresh = [
            e.model_copy(update={"event_id": e.event_id[:-4] + f"{rng.randrange(16**4):04x}"})
            for e in events
        ]
        start = time.perf_counter()
        await store.append_many(fresh)
        return len(fresh) / (time.perf_counter() - start)

    raw_rates, our_rates = [], []
    for _ in range(3):  # interleaved trials, best of three each
        raw_rates.append(await raw())
        our_rates.append(await ours())
    return {
        "raw_per_s": max(raw_rates),
        "ringloop_per_s": max(our_rates),
        "append_ratio": max(our_rates) / max(raw_rates),
    }


async def bench_rebuild(store: EventStore, count: int, folder: Path) -> dict[str, float]:
    rng = random.Random(2)
    start_seq = await store.last_seq(LOG_STREAM) + 1
    batch: list[Event] = []
    written = 0
    while written < count:
        match, update = match_pair(written, rng)
        batch += [match, update]
        written += 2
        if len(batch) >= 10_000:
            await store.append_many(batch)
            batch = []
    if batch:
        await store.append_many(batch)
    end_seq = await store.last_seq(LOG_STREAM)

    start = time.perf_counter()
    read = 0
    async for chunk in store.read_raw(LOG_STREAM, "loop.>", start_seq=start_seq, end_seq=end_seq):
        read += len(chunk)
    read_rate = read / (time.perf_counter() - start)

    runner = ProjectionRunner(EloProjection(), store, open_db(folder / "rebuild.db"))
    start = time.perf_counter()
    await runner.catch_up(until_seq=end_seq)
    elapsed = time.perf_counter() - start
    return {
        "rebuild_events": float(end_seq),
        "rebuild_events_per_s": end_seq / elapsed,
        "raw_read_per_s": read_rate,
        "rebuild_vs_raw_read": (end_seq / elapsed) / read_rate,
    }


async def bench_start_up(
    store: EventStore, url: str, folder: Path, tail: int, rebuild_db: Path
) -> dict[str, Any]:
    """`ringloop run elo-rater` on the rebuilt log: start-up from a snapshot vs from seq 1.

    The snapshot is written from the rebuild's SQLite file as the projector writes it; then
    `tail` events are appended, and each run is started as a real process while one new
    match waits for it. Ready = its Elo view caught up; decision = its EloUpdated stored.
    """
    projection = EloProjection()
    start = time.perf_counter()
    snapshot = await write_snapshot(store, projection, rebuild_db)
    write_s = time.perf_counter() - start
    assert snapshot is not None
    start = time.perf_counter()
    fetched = await fetch_snapshot(store, projection)
    fetch_s = time.perf_counter() - start
    assert fetched is not None
    load_s = {}
    for table in projection.tables:
        start = time.perf_counter()
        decode_rows(fetched.tables[table.name], table)
        load_s[table.name] = time.perf_counter() - start
    del fetched
    rng = random.Random(4)
    events: list[Event] = []
    for index in range(tail // 2):
        events.extend(match_pair(20_000_000 + index, rng))
    if events:
        await store.append_many(events)
    await store.js.add_consumer(
        LOG_STREAM,
        ConsumerConfig(
            durable_name="elo-rater", ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW, filter_subjects=["loop.match.completed.>"],
        ),
    )  # fmt: skip
    results: dict[str, Any] = {
        "startup_log_events": float(await store.last_seq(LOG_STREAM)),
        "snapshot_seq": snapshot.last_seq,
        "snapshot_rows": dict(snapshot.rows),
        "snapshot_bytes": sum(map(len, snapshot.tables.values())),
        "snapshot_write_s": write_s,
        "snapshot_fetch_s": fetch_s,
        "snapshot_load_table_s": load_s,
        "startup_tail_events": len(events),
    }
    for mode in ("snapshot", "seq1"):
        run = await _start_rater(store, url, folder, use_snapshot=mode == "snapshot")
        results.update({f"startup_{mode}_{key}": value for key, value in run.items()})
    return results


async def _start_rater(store: EventStore, url: str, folder: Path, *, use_snapshot: bool) -> dict[str, Any]:  # fmt: skip
    settings = folder / f"startup-{use_snapshot}.toml"
    settings.write_text(f"[snapshots]\nenabled = {str(use_snapshot).lower()}\n")
    match = MatchCompleted(
        config="square8_2p", match_id=f"startup-{use_snapshot}",
        participants=[MatchParticipant(participant_id="model-1", rank=1, seat=1),
                      MatchParticipant(participant_id="model-2", rank=2, seat=2)],
    )  # fmt: skip
    subject = "loop.elo.updated.square8_2p"
    rated_before = await store.last_seq(LOG_STREAM, subject)
    await store.append(match)
    command = [sys.executable, "-m", "ops", "run", "elo-rater", "--nats", url, "--settings",
               str(settings), "--state-dir", str(folder / "state"), "--log-level", "info"]  # fmt: skip
    lines: list[tuple[float, dict[str, Any]]] = []
    began = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2])
    reader = threading.Thread(target=_read_json_lines, args=(process, lines), daemon=True)
    reader.start()
    try:
        while await store.last_seq(LOG_STREAM, subject) <= rated_before:
            if process.poll() is not None:
                raise RuntimeError(f"elo-rater exited with {process.returncode}")
            await asyncio.sleep(0.02)
        decided = time.perf_counter() - began
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
        reader.join(10)
    connected = next(t for t, line in lines if line.get("event") == "streams_ready")
    ready_at, view = next((t, line) for t, line in lines if line.get("event") == "view_started")
    return {
        "ready_s": ready_at - began,
        "decision_s": decided,
        "connected_s": connected - began,
        "view_s": view["seconds"],
        "folded": view["folded"],
    }


def _read_json_lines(process: subprocess.Popen[bytes], lines: list[tuple[float, dict[str, Any]]]) -> None:  # fmt: skip
    assert process.stderr is not None
    for raw in process.stderr:
        if raw.startswith(b"{"):
            lines.append((time.perf_counter(), json.loads(raw)))


async def bench_latency(store: EventStore, samples: int, folder: Path) -> dict[str, float]:
    runner = ProjectionRunner(EloProjection(), store, open_db(folder / "live.db"))
    await runner.catch_up()
    runner.start()
    rng = random.Random(3)
    latencies = []
    for index in range(samples):
        match, _ = match_pair(10_000_000 + index, rng)
        start = time.perf_counter()
        seq = await store.append(match)
        await runner.wait_for(seq, timeout=10)
        latencies.append((time.perf_counter() - start) * 1000)
    await runner.stop()
    latencies.sort()
    return {
        "latency_p50_ms": statistics.median(latencies),
        "latency_p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "latency_max_ms": latencies[-1],
    }


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    from ops.bench.durability import run_durability

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ringloop-bench-") as tmp:
        results["durability"] = await run_durability(args, Path(tmp) / "durability")
    if not args.durability_only:
        results.update(await run_figures(args))
    results["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }
    return results


async def run_figures(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ringloop-bench-") as tmp:
        folder = Path(tmp)
        server = EmbeddedServer(folder / "nats")
        server.start()
        try:
            nc = await connect(NatsSettings(), server.url)
            await ensure_streams(nc.jetstream(), StreamSettings())
            store = EventStore(nc, timeout=60)
            results: dict[str, Any] = {}
            results.update(await bench_append(store, args.appends))
            results.update(await bench_rebuild(store, args.rebuild_events, folder))
            results.update(
                await bench_start_up(
                    store, server.url, folder, args.startup_tail, folder / "rebuild.db"
                )
            )
            results.update(await bench_latency(store, args.latency_samples, folder))
            await nc.drain()
        finally:
            server.stop()
    return results


def run(args: argparse.Namespace) -> int:
    from ops.bench.durability import render

    results = asyncio.run(run_all(args))
    for line in render(results["durability"]):
        print(line)
    if not args.durability_only:
        print_figures(results)
    print(f"machine: {results['machine']}")
    if args.json:
        print(json.dumps(results))
    return 0


def print_figures(results: dict[str, Any]) -> None:
    print(
        f"append: ringloop {results['ringloop_per_s']:,.0f}/s vs raw publish_async {results['raw_per_s']:,.0f}/s → ratio {results['append_ratio']:.2f} (goal ≥ 0.8)"
    )
    print(
        f"rebuild: {results['rebuild_events']:,.0f} events at {results['rebuild_events_per_s']:,.0f}/s (goal ≥ 50,000/s); raw ordered read {results['raw_read_per_s']:,.0f}/s → {results['rebuild_vs_raw_read']:.2f} of raw"
    )
    print(
        f"append→projection latency: p50 {results['latency_p50_ms']:.2f} ms, p99 {results['latency_p99_ms']:.2f} ms (goal p99 < 50 ms)"
    )
    print(
        f"handler start-up (`ringloop run elo-rater`, {results['startup_log_events']:,.0f}-event log): "
        f"from a snapshot {results['startup_snapshot_ready_s']:.2f} s to a caught-up view "
        f"({results['startup_snapshot_folded']:,} tail events folded; first decision "
        f"{results['startup_snapshot_decision_s']:.2f} s) vs from seq 1 {results['startup_seq1_ready_s']:.2f} s "
        f"(first decision {results['startup_seq1_decision_s']:.2f} s) → "
        f"{results['startup_seq1_ready_s'] / results['startup_snapshot_ready_s']:.1f}x (goal < 5 s); "
        f"process connected after {results['startup_snapshot_connected_s']:.2f} s"
    )
    loads = ", ".join(f"{t} {s:.2f} s" for t, s in results["snapshot_load_table_s"].items())
    print(
        f"snapshot: seq {results['snapshot_seq']:,}, {sum(results['snapshot_rows'].values()):,} rows, "
        f"{results['snapshot_bytes'] / 1e6:.1f} MB, written in {results['snapshot_write_s']:.2f} s; "
        f"fetched in {results['snapshot_fetch_s']:.2f} s; building each table: {loads}"
    )
