"""A 3-node R3 cluster loses a non-leader, then the stream leader, while matches are appended
and rated: the rater and the projection ride it out, the nodes rejoin and catch up, and the
log holds every acknowledged match and exactly one rating update each."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from fault_invariants import (
    Figures,
    assert_exactly_once,
    assert_nothing_lost,
    assert_replay_equal,
    consumers_drained,
    read_log,
    wait_until,
)

from events import LOG_STREAM, MatchCompleted
from events.streams import STREAM_SUBJECTS
from handlers.runtime import HandlerRuntime, run_until_stopped
from ops.app import App
from ops.cluster import LoopbackCluster
from ops.settings import load_settings
from ops.status import collect_cluster
from projections.transient import is_transient, retry_transient

PLAYERS = ["random", "heuristic", "alpha", "beta", "gamma"]


class Producer:
    """Appends matches one after another, remembering each one the server acknowledged."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.acknowledged: set[str] = set()
        self.stop = asyncio.Event()
        self.rng = random.Random(7)

    def match(self, index: int) -> MatchCompleted:
        a, b = self.rng.sample(PLAYERS, 2)
        ranks = [1, 2] if self.rng.random() < 0.5 else [2, 1]
        participants = [
            {"participant_id": a, "rank": ranks[0]},
            {"participant_id": b, "rank": ranks[1]},
        ]
        return MatchCompleted(config="square8_2p", match_id=f"m{index}", participants=participants)

    async def run(self) -> None:
        for index in itertools.count():
            if self.stop.is_set():
                return
            event = self.match(index)
            while not await self.append(event):
                pass  # the same event again (its id makes a copy harmless)
            self.acknowledged.add(event.event_id)
            await asyncio.sleep(0.02)

    async def append(self, event: MatchCompleted) -> bool:
        try:
            await self.app.store.append(event)
        except Exception as exc:  # the bus stayed away past the store's own retries
            if not is_transient(exc):
                raise
            return False
        return True


@pytest_asyncio.fixture(scope="module")
async def app(
    cluster: LoopbackCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[App]:
    state = tmp_path_factory.mktemp("state")
    settings = load_settings(None, state_dir=str(state), nats__url=cluster.url, nats__replicas=3)
    application = await App.open(settings, start_server=False)
    yield application
    await application.close()


async def leader_of(app: App, stream: str) -> str:
    info = await retry_transient(lambda: app.store.js.stream_info(stream), what="stream info")
    assert info.cluster is not None and info.cluster.leader
    return str(info.cluster.leader)


async def rated(app: App) -> int:
    return len(app.runners["elo"].state.data["matches"]) if "elo" in app.runners else 0


async def all_current(app: App) -> bool:
    try:
        cluster = await collect_cluster(app)
    except Exception as exc:  # asked mid-election: ask again
        if not is_transient(exc):
            raise
        return False
    return cluster["health"] == "ok"


async def test_r3_cluster_survives_losing_a_follower_then_the_leader(
    app: App, cluster: LoopbackCluster, tmp_path: Path
) -> None:
    figures = Figures("cluster-r3")
    for name in STREAM_SUBJECTS:
        info = await app.store.js.stream_info(name)
        assert info.config.num_replicas == 3
    elo = app.projection_runner("elo")
    elo.start()
    stop = asyncio.Event()
    rater = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    rating = asyncio.create_task(run_until_stopped([rater], stop))
    producer = Producer(app)
    producing = asyncio.create_task(producer.run())

    async def progressed(after: int, more: int = 10) -> bool:
        return rater.processed >= after + more

    await wait_until(lambda: progressed(0), 60, "the first ratings")
    recoveries = []
    for victim_kind in ("follower", "leader"):
        leader = await leader_of(app, LOG_STREAM)
        victim = (
            leader
            if victim_kind == "leader"
            else next(n.name for n in cluster.nodes if n.name != leader)
        )
        before = rater.processed
        killed_at = time.monotonic()
        cluster.kill(victim)
        await wait_until(lambda before=before: progressed(before), 120, f"ratings without {victim}")
        recoveries.append(round(time.monotonic() - killed_at, 2))
        if victim_kind == "leader":
            figures["new_leader"] = await leader_of(app, LOG_STREAM)
            assert figures["new_leader"] != victim
        cluster.restart(victim)
        figures[f"{victim_kind}_rejoin_s"] = round(
            await wait_until(lambda: all_current(app), 120, f"{victim} to catch up"), 2
        )
    producer.stop.set()
    await producing
    spec_name = rater.spec.name
    await wait_until(lambda: consumers_drained(app, LOG_STREAM, [spec_name]), 120, "the rater")
    stop.set()
    await rating
    last = await app.store.last_seq(LOG_STREAM)
    await elo.wait_for(last, 60)

    log, games = await read_log(app)
    assert_nothing_lost(log, producer.acknowledged)
    counts = assert_exactly_once(log, games)
    assert counts["matches"] == len(producer.acknowledged)
    await assert_replay_equal(app, ["elo"])
    figures["kills"] = 2
    figures["recovery_s"] = recoveries
    figures.values.update(counts)
    figures.show()
