"""Prometheus /metrics against a real nats-server: the loop's figures from the read models and
the bus, and a real handler's latency and outcomes through the runtime's hook."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from events import LOG_STREAM, MatchCompleted
from handlers.coordinator import Holder, LeaseClient
from handlers.runtime import SETTLED_OBSERVERS, HandlerRuntime
from ops.app import App
from ops.http_service import HttpService, HttpServiceError
from ops.watching import Watching, start_watching
from ops.wiring import PROJECTIONS
from tests import loop_story as story

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest_asyncio.fixture(scope="module")
async def watching(app: App) -> AsyncIterator[Watching]:
    await app.store.append(story.random_game(story.CONFIG, seed=5))
    await app.store.append_many([*story.training(), *story.rated_matches(), *story.verdict()])
    for name in PROJECTIONS:
        app.projection_runner(name).start()
    started = await start_watching(
        app, dashboard=False, loop_metrics=True, handler_metrics=True, metrics_port=0
    )
    yield started
    await started.stop()


async def current(watching: Watching) -> Samples:
    for name in PROJECTIONS:
        await watching.app.refresh(name)
    assert watching.monitor is not None
    await watching.monitor.read()
    return await asyncio.to_thread(scrape, watching.urls["metrics"])


async def test_loop_figures_from_the_read_models(watching: Watching) -> None:
    samples = await current(watching)
    config = story.CONFIG
    assert value(samples, "ringloop_games_total", config=config, purpose="selfplay") == 1
    assert value(samples, "ringloop_games_total", config=config, purpose="eval") == 0
    assert value(samples, "ringloop_trainings_total", config=config, outcome="completed") == 1
    assert value(samples, "ringloop_training_samples_per_second", config=config) == 321.5
    assert value(samples, "ringloop_training_samples_total", config=config) == 600
    decisions = {"config": config, "decision": "promoted", "gate": "floors"}
    assert value(samples, "ringloop_promotion_decisions_total", **decisions) == 1
    assert value(samples, "ringloop_best_elo", config=config) == pytest.approx(1524.0)
    assert value(samples, "ringloop_generation", config=config) == 1
    clock = value(samples, "ringloop_last_promotion_decision_timestamp_seconds", config=config)
    last_game = value(samples, "ringloop_last_selfplay_game_timestamp_seconds", config=config)
    assert clock is not None and last_game is not None and clock >= last_game
    assert value(samples, "ringloop_projection_position", projection="timeline") == (
        await watching.app.store.last_seq(LOG_STREAM)
    )
    url_file = watching.app.settings.state_dir / "metrics.url"
    assert url_file.read_text() == watching.urls["metrics"]


async def test_handler_latency_outcomes_dead_letters_and_lag(app: App, watching: Watching) -> None:
    runtime = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    task = asyncio.create_task(runtime.run())
    try:
        match = MatchCompleted(config=story.HEX_CONFIG, match_id="metrics-1",
                               participants=[{"participant_id": "a", "rank": 1},
                                             {"participant_id": "b", "rank": 2}])  # fmt: skip
        await app.store.append(match)
        await app.store.js.publish(f"loop.match.completed.{story.HEX_CONFIG}", b'{"oops": 1}')
        last = await app.store.last_seq(LOG_STREAM)
        await _until(lambda: runtime.failed >= 1 and app.runners["timeline"].position >= last)
    finally:
        runtime.stop()
        await task
    samples = await current(watching)
    handler = "elo-rater-match-completed"
    # every delivery of this consumer: the story's matches, the new one and the poison one
    assert (
        value(samples, "ringloop_handler_seconds_count", handler=handler) == runtime.processed + 1
    )
    acked = value(samples, "ringloop_handler_deliveries_total", handler=handler, outcome="acked")
    assert acked == runtime.processed == len(story.rated_matches()) // 2 + 1
    assert (
        value(samples, "ringloop_handler_deliveries_total", handler=handler, outcome="failed") == 1
    )
    assert value(samples, "ringloop_dead_letters_total", handler="elo-rater") == 1
    lag = value(samples, "ringloop_consumer_lag", stream=LOG_STREAM, consumer=handler)
    assert lag == 0


async def test_held_leases(app: App, watching: Watching) -> None:
    leases = LeaseClient(app.store)
    lease = await leases.acquire("task.training.0", Holder.current("t-metrics"), ttl_s=60)
    assert lease is not None
    try:
        samples = await current(watching)
        assert value(samples, "ringloop_leases_held", kind="training") == 1
        held = value(samples, "ringloop_lease_held_seconds", key="task.training.0", kind="training")
        assert held is not None and held >= 0
    finally:
        await leases.release(lease)
    samples = await current(watching)
    assert value(samples, "ringloop_leases_held", kind="training") is None


async def test_hook_detaches_and_a_taken_port_is_a_clear_error(watching: Watching) -> None:
    assert watching.handler_metrics is not None
    assert watching.handler_metrics.observe in SETTLED_OBSERVERS
    port = int(watching.urls["metrics"].rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(HttpServiceError, match=f"metrics: cannot listen on 127.0.0.1:{port}"):
        await HttpService(object(), "127.0.0.1", port, name="metrics").start()


async def _until(condition: object, timeout: float = 20.0) -> None:
    async def wait() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)
