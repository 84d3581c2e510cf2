"""The control stages end to end on a real nats-server: data gate, promoter, curriculum,
feedback, leases, projection rebuilds and `explain`."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from nats import errors as nats_errors

from events import (
    GAMES_STREAM,
    LOG_STREAM,
    CurriculumRebalanced,
    EvaluationCompleted,
    Event,
    FeedbackSignalRaised,
    GameCompleted,
    MatchCompleted,
    ModelRejected,
    TaskFinished,
    TaskRefused,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
)
from events.catalogue import ArtifactRef, EpochLoss, GameRange, OpponentResult
from events.envelope import utc_now
from handlers import coordinator, curriculum, data_gate, feedback
from handlers.runtime import HandlerRuntime
from handlers.settings import LoopSettings, LoopSettingsError
from ops.app import App
from ops.explain import explain_model, render
from ops.replay import check, rebuild
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings
from projections.games import GamesProjection
from projections.pipeline import PipelineProjection
from projections.registry import RegistryProjection, current_best
from projections.runner import ProjectionRunner, open_db

T = TypeVar("T")
MINE = ["games", "pipeline", "registry", "curriculum", "feedback"]
HANDLERS = ["data-gate", "promoter", "curriculum", "feedback", "coordinator", "elo-rater"]
CONFIGS = [
    "square8_2p",
    "hex8_2p",
    "square8_3p",
    "hexagonal_2p",
    "hexagonal_3p",
    "hex8_3p",
    "square19_3p",
]
LOOP = {
    "configs": CONFIGS,
    "data_gate": {"min_new_games": {"p2": 5, "p3": 6, "p4": 7}},
    "training": {"window_games": 8, "batch_size": 64},
    "evaluation": {"sprt": {"elo0": 0, "elo1": 50}},
    "promotion": {"cooldown_s": 600, "regression_margin": 50, "regression_min_games": 6},
    "curriculum": {"every_inputs": 4, "target_games": 10},
    "feedback": {"min_batch_size": 16, "plateau_evaluations": 3, "promotion_failure_streak": 2},
    # task leases outlive a stalled event loop on a loaded 2-core machine; the loop lease stays
    # short so a test sees its renewals carry it past its TTL
    "tasks": {"lease_ttl_s": 5, "renew_every_s": 1, "loop_lease_ttl_s": 2, "training": 1},
}


@pytest.fixture(scope="module")
def settings(nats_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    return load_settings(None, state_dir=str(state), nats__url=nats_server.url, loop=LOOP)


@pytest_asyncio.fixture(scope="module")
async def running(app: App) -> AsyncIterator[dict[str, HandlerRuntime]]:
    runtimes = {
        spec.name: HandlerRuntime(spec, app.store)
        for name in HANDLERS
        for spec in app.stage(name).specs()
    }
    tasks = [asyncio.create_task(r.run()) for r in runtimes.values()]
    yield runtimes
    for runtime in runtimes.values():
        runtime.stop()
    await asyncio.gather(*tasks)


# ------------------------------------------------------------ helpers


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 15) -> T:
    """Poll a condition on the bus until it holds (the test waits on state, not on time)."""

    async def poll() -> T:
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


async def events_on(app: App, subject: str, stream: str = LOG_STREAM) -> list[Any]:
    return [s.event for s in await app.store.read_all(stream, subject)]


async def count_at_least(app: App, subject: str, n: int, timeout: float = 15) -> list[Any]:
    async def probe() -> list[Any] | None:
        found = await events_on(app, subject)
        return found if len(found) >= n else None

    return await eventually(probe, timeout)


async def drained(app: App, stage: str, stream: str = LOG_STREAM) -> None:
    """Until every durable consumer of the stage on the stream has nothing pending or
    unacknowledged."""
    names = [spec.name for spec in app.stage(stage).specs() if spec.stream == stream]

    async def probe() -> bool:
        for name in names:
            info = await app.store.js.consumer_info(stream, name)
            if info.num_pending or info.num_ack_pending:
                return False
        return bool(names)

    await eventually(probe)


def game(config: str, i: int, purpose: str = "selfplay", generation: int = 0) -> GameCompleted:
    return GameCompleted(config=config, purpose=purpose, game_id=f"{config}-{purpose}-{i}",
                         seats=[{"seat": 1, "participant_id": "a"}, {"seat": 2, "participant_id": "b"}],
                         winner=1, ranking=[1, 2], moves=["a1", "b2"], generation=generation)  # fmt: skip


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def trained(config: str, model_id: str, training_id: str, *, parent: str | None = None,
            losses: tuple[float, ...] = (1.0, 0.8), generation: int = 1) -> TrainingCompleted:  # fmt: skip
    return TrainingCompleted(
        config=config, training_id=training_id, model_id=model_id,
        artifact=ArtifactRef(name=f"{model_id}.pt", sha256=sha(model_id), size=10),
        parent_model_id=parent, samples=100, generation=generation,
        losses=[EpochLoss(epoch=i + 1, policy_loss=v / 2, value_loss=v / 2) for i, v in enumerate(losses)],
        data=GameRange(subject=f"games.{config.replace('_', '.')}.selfplay", first_seq=1, last_seq=1, count=1),
    )  # fmt: skip


def result(opponent: str, score: float, games: int = 40) -> OpponentResult:
    """The result a gate reports (handlers.gating: its SPRT and Wilson bound included)."""
    from handlers.gating import HeadToHead

    wins = round(score * games)
    return HeadToHead(opponent, wins, 0, games - wins, games).result(LoopSettings.validated(LOOP))


def evaluation(
    config: str, candidate: str, results: list[OpponentResult], **extra: Any
) -> EvaluationCompleted:
    return EvaluationCompleted(config=config, evaluation_id=f"eval-{candidate}", candidate=candidate,
                               results=results, **extra)  # fmt: skip


async def decision_for(app: App, config: str, model_id: str) -> Event:
    async def probe() -> Event | None:
        found = [e for e in await events_on(app, f"loop.model.*.{config}") if e.model_id == model_id
                 and e.type in ("model.promoted", "model.rejected")]  # fmt: skip
        return found[0] if found else None

    return await eventually(probe)


# ------------------------------------------------------------ settings


def test_settings_profiles_and_field_named_errors() -> None:
    tiny = LoopSettings.profile("tiny")
    assert tiny.configs == ("square8_2p",) and tiny.selfplay.simulations < 20
    default = LoopSettings.profile("default")
    assert [default.data_gate.threshold(c) for c in ("hex8_2p", "hex8_3p", "hex8_4p")] == [
        50,
        70,
        100,
    ]
    with pytest.raises(LoopSettingsError, match="selfplay.simulations"):
        LoopSettings.validated({"selfplay": {"simulations": 0}})
    with pytest.raises(LoopSettingsError, match="curriculum"):
        LoopSettings.validated({"curriculum": {"min_weight": 5, "max_weight": 1}})
    with pytest.raises(LoopSettingsError, match="unknown loop profile"):
        LoopSettings.profile("huge")


# ------------------------------------------------------------ data gate


async def test_data_gate_threshold_and_exact_range(
    app: App, running: dict[str, HandlerRuntime]
) -> None:
    config = "hex8_2p"
    seqs = await app.store.append_many([game(config, i) for i in range(4)])
    await app.store.append_many([game(config, 100, "eval"), game("hex8_3p", 0)])
    await drained(app, "data-gate", GAMES_STREAM)
    assert await events_on(app, f"loop.training.requested.{config}") == []

    seqs += await app.store.append_many([game(config, 4)])
    [request] = await count_at_least(app, f"loop.training.requested.{config}", 1)
    assert request.games == GameRange(subject="games.hex8.2p.selfplay", first_seq=seqs[0],
                                      last_seq=seqs[4], count=5)  # fmt: skip
    assert request.generation == 1 and request.parent_model_id is None

    # while that training runs, more games request nothing
    seqs += await app.store.append_many([game(config, i) for i in range(5, 10)])
    await drained(app, "data-gate", GAMES_STREAM)
    assert len(await events_on(app, f"loop.training.requested.{config}")) == 1

    await app.store.append(trained(config, "hex8-m1", request.training_id))
    seqs += await app.store.append_many([game(config, 10)])
    await drained(app, "data-gate", GAMES_STREAM)  # the candidate awaits its decision
    assert len(await events_on(app, f"loop.training.requested.{config}")) == 1

    await app.store.append(ModelRejected(config=config, model_id="hex8-m1", gate="floors",
                                         statistic=0.1, threshold=0.5, reason="test"))  # fmt: skip
    seqs += await app.store.append_many([game(config, 11)])
    requests = await count_at_least(app, f"loop.training.requested.{config}", 2)
    assert requests[1].games.count == 8  # the window: the newest 8 of 12 selfplay games
    assert (requests[1].games.first_seq, requests[1].games.last_seq) == (seqs[4], seqs[11])


async def test_two_gates_request_one_training(app: App, running: dict[str, HandlerRuntime]) -> None:
    spec = replace(app.handler_spec("data-gate"), batch=1)
    views = {name: ProjectionRunner(cls(), app.store, open_db(":memory:")) for name, cls in
             [("games", GamesProjection), ("pipeline", PipelineProjection), ("registry", RegistryProjection)]}  # fmt: skip
    from projections.feedback import FeedbackProjection

    views["feedback"] = ProjectionRunner(FeedbackProjection(), app.store, open_db(":memory:"))
    for runner in views.values():
        runner.start()

    async def refresh() -> None:
        for runner in views.values():
            await runner.wait_for(await app.store.last_seq(runner.projection.stream), 30)

    second = HandlerRuntime(replace(spec, refresh=refresh, handle=lambda e: data_gate.on_game_completed(
        e, **{n: r.state for n, r in views.items()}, settings=app.settings.loop,
        producer=second_producer)), app.store)  # fmt: skip
    second_producer = second.producer
    task = asyncio.create_task(second.run())
    config = "square8_3p"
    for i in range(0, 24, 3):
        await app.store.append_many([game(config, j) for j in range(i, i + 3)])
    await drained(app, "data-gate", GAMES_STREAM)
    second.stop()
    await task
    for runner in views.values():
        await runner.stop()
    requests = await events_on(app, f"loop.training.requested.{config}")
    assert len(requests) == 1 and 6 <= requests[0].games.count <= 8  # what was stored by then


# ------------------------------------------------------------ promoter


async def test_promoter_gates_cooldown_and_rollback(
    app: App, running: dict[str, HandlerRuntime]
) -> None:
    config = "square8_2p"
    await app.store.append(trained(config, "m1", "t1"))
    await app.store.append(
        evaluation(config, "m1", [result("random", 0.9), result("heuristic", 0.7)])
    )
    first = await decision_for(app, config, "m1")
    assert first.type == "model.promoted" and first.gate == "floors" and first.previous_best is None

    await app.store.append(trained(config, "m2", "t2", parent="m1", generation=2))
    await app.store.append(evaluation(config, "m2", [result("random", 0.5), result("heuristic", 0.9),
                                                     result("m1", 0.9)], occurred_at=utc_now() + timedelta(hours=1)))  # fmt: skip
    rejected = await decision_for(app, config, "m2")
    assert (rejected.type, rejected.gate, rejected.statistic, rejected.threshold) == (
        "model.rejected", "floor:random", 0.5, 0.8)  # fmt: skip

    strong = [result("random", 1.0), result("heuristic", 0.9), result("m1", 0.85)]
    await app.store.append(trained(config, "m3", "t3", parent="m1", generation=2))
    await app.store.append(evaluation(config, "m3", strong))
    cooled = await decision_for(app, config, "m3")
    assert cooled.type == "model.rejected" and cooled.gate == "cooldown" and cooled.threshold == 600

    await app.store.append(trained(config, "m4", "t4", parent="m1", generation=2))
    later = utc_now() + timedelta(hours=2)
    await app.store.append(evaluation(config, "m4", strong, occurred_at=later))
    promoted = await decision_for(app, config, "m4")
    assert promoted.type == "model.promoted" and promoted.gate == "sprt"
    assert promoted.previous_best == "m1" and promoted.statistic >= promoted.threshold
    assert promoted.generation == 2

    # the regression watch: m1 keeps beating m4 until m4 is 50 Elo below it
    for i in range(12):
        await app.store.append(MatchCompleted(config=config, match_id=f"regress-{i}", participants=[
            {"participant_id": "m1", "rank": 1, "model_sha256": sha("m1")},
            {"participant_id": "m4", "rank": 2, "model_sha256": sha("m4")}]))  # fmt: skip
    [rollback] = await count_at_least(app, f"loop.model.rolled_back.{config}", 1)
    assert rollback.model_id == "m4" and rollback.restored_model_id == "m1"
    assert rollback.gate == "regression" and rollback.statistic < rollback.threshold == -50
    await drained(app, "promoter")
    assert len(await events_on(app, f"loop.model.rolled_back.{config}")) == 1
    await app.refresh("registry")
    best = current_best(app.runners["registry"].state, config)
    assert best is not None and best["model_id"] == "m1" and best["state"] == "best"


# ------------------------------------------------------------ curriculum


async def test_curriculum_weights_bounded_inputs_recorded(
    app: App, running: dict[str, HandlerRuntime]
) -> None:
    # its own inputs: a promoted, evaluated and rated model of a config no other test decides
    config = "hex8_3p"
    await app.store.append(trained(config, "cur-m1", "cur-t1"))
    await app.store.append(
        evaluation(config, "cur-m1", [result("random", 0.9), result("heuristic", 0.7)])
    )
    await decision_for(app, config, "cur-m1")
    for i in range(4):  # enough ratings for a rebalance after the evaluation is folded
        await app.store.append(MatchCompleted(config=config, match_id=f"cur-{i}", participants=[
            {"participant_id": "cur-m1", "rank": 1, "model_sha256": sha("cur-m1")},
            {"participant_id": "random", "rank": 2}]))  # fmt: skip

    async def scored() -> CurriculumRebalanced | None:
        found = await events_on(app, "loop.curriculum.rebalanced")
        with_score = [e for e in found if e.inputs[config].recent_win_rate is not None]
        return with_score[-1] if with_score else None

    latest = (await eventually(scored)).inputs[config]
    await drained(app, "curriculum")
    rebalances: list[CurriculumRebalanced] = await events_on(app, "loop.curriculum.rebalanced")
    loop = app.settings.loop
    for event in rebalances:
        assert set(event.weights) == set(CONFIGS) == set(event.inputs)
        assert all(
            loop.curriculum.min_weight <= w <= loop.curriculum.max_weight
            for w in event.weights.values()
        )
        assert all(curriculum.weight(event.inputs[c], loop) == w for c, w in event.weights.items())
    assert latest.recent_win_rate is not None and latest.elo_gap < loop.curriculum.target_elo
    # rate limit: decisions always count, ratings once per `every_inputs`
    decisions = len(await events_on(app, "loop.model.promoted.>")) + len(
        await events_on(app, "loop.model.rejected.>")
    )
    ratings = len(await events_on(app, "loop.elo.updated.>"))
    assert len(rebalances) <= decisions + ratings // loop.curriculum.every_inputs
    # the clamp itself
    from events.catalogue import CurriculumInput

    assert (
        curriculum.weight(CurriculumInput(elo_gap=1e6, data_deficit=1, boost=1), loop)
        == loop.curriculum.max_weight
    )
    # by hand: 1 + gap 200 / scale 400 + deficit 0.25 + 1.0 x (0.5 - win rate 0.3) + boost 0.1
    by_hand = CurriculumInput(elo_gap=200, data_deficit=0.25, recent_win_rate=0.3, boost=0.1)
    assert curriculum.weight(by_hand, loop) == pytest.approx(1 + 0.5 + 0.25 + 0.2 + 0.1)
    assert curriculum.weight(CurriculumInput(elo_gap=-50, data_deficit=0), loop) == 1.0
    steep = loop.with_overrides(curriculum={"win_rate_weight": 5})
    assert curriculum.weight(CurriculumInput(elo_gap=-1e6, data_deficit=0, recent_win_rate=1.0), steep) == (
        loop.curriculum.min_weight)  # fmt: skip


# ------------------------------------------------------------ feedback


async def test_feedback_signals_are_clamped(app: App, running: dict[str, HandlerRuntime]) -> None:
    config, loop = "hexagonal_2p", app.settings.loop
    for i in range(4):
        await app.store.append(
            TrainingFailed(config=config, training_id=f"oom-{i}", reason="oom", error="CUDA OOM")
        )
    ooms = await count_at_least(app, f"loop.feedback.raised.{config}", 4)
    assert [(s.old_value, s.new_value) for s in ooms] == [(64, 32), (32, 16), (16, 16), (16, 16)]
    for i in range(12):
        await app.store.append(ModelRejected(config=config, model_id=f"r{i}", gate="floor:random",
                                             statistic=0.1, threshold=0.8, reason="weak"))  # fmt: skip
    await app.store.append(trained("hexagonal_3p", "of1", "of-t", losses=(2.0, 1.0, 0.2)))
    await count_at_least(app, "loop.feedback.raised.hexagonal_3p", 1)
    await drained(app, "feedback")
    signals: list[FeedbackSignalRaised] = await events_on(app, "loop.feedback.raised.>")
    kinds = {s.signal for s in signals}
    assert {"out_of_memory", "plateau", "promotion_failures", "overfitting"} <= kinds
    for s in signals:
        low, high = feedback.bounds(loop, s.config, s.knob)
        assert low <= s.new_value <= high, s
    await app.refresh("feedback")
    knobs = feedback.knobs(app.runners["feedback"].state, config, loop)
    assert knobs.batch_size == 16
    assert knobs.dirichlet_fraction == pytest.approx(loop.feedback.max_dirichlet_fraction)
    assert knobs.curriculum_boost == loop.feedback.max_curriculum_boost
    overfit = feedback.knobs(app.runners["feedback"].state, "hexagonal_3p", loop)
    assert overfit.min_new_games == round(6 * loop.feedback.data_factor)


# ------------------------------------------------------------ leases


async def test_lease_ttl_renewal_and_fencing(app: App) -> None:
    leases = coordinator.LeaseClient(app.store)
    me = coordinator.Holder.current("t")
    first = await leases.acquire("test.ttl", me, ttl_s=1)
    assert first is not None and await leases.acquire("test.ttl", me, ttl_s=1) is None
    renewed = await leases.renew(first)
    assert renewed.token > first.token
    stale = coordinator.Lease("test.ttl", first.token, coordinator.Holder.current("u"), 1)
    with pytest.raises(coordinator.LeaseLost):
        await leases.renew(stale)  # a stale token of another holder is refused

    async def free() -> bool:
        return (await leases.read("test.ttl"))[1] is None

    await eventually(free, timeout=5)  # expired by TTL, no one released it
    again = await leases.acquire("test.ttl", me, ttl_s=1)
    assert again is not None and again.token > renewed.token
    assert await leases.release(again) and await free()


async def test_a_renewal_whose_ack_was_lost_is_adopted_not_lost(app: App) -> None:
    leases = coordinator.LeaseClient(app.store)
    me = coordinator.Holder.current("ack-lost")
    lease = await leases.acquire("test.ack", me, ttl_s=5)
    assert lease is not None
    # the renewal reached the server but its ack never came back: our token is now stale
    landed = await leases._publish("test.ack", me, expected=lease.token, ttl_s=5)
    renewed = await leases.renew(lease)
    assert renewed.token == landed > lease.token
    assert (await leases.renew(renewed)).token > renewed.token
    # someone else holding the key is still a lost lease
    other = coordinator.Holder.current("other")
    theirs = await leases._publish("test.ack", other, expected=renewed.token + 1, ttl_s=5)
    with pytest.raises(coordinator.LeaseLost):
        await leases.renew(renewed)
    await leases.release(coordinator.Lease("test.ack", theirs, other, 5))


class _FlakyLeases(coordinator.LeaseClient):
    """Fault injection on the real server: the first renewal times out."""

    failures = 1

    async def renew(self, lease: coordinator.Lease) -> coordinator.Lease:
        if self.failures:
            self.failures -= 1
            raise nats_errors.TimeoutError
        return await super().renew(lease)


async def test_a_renewal_timeout_is_retried_and_stopping_stays_clean(app: App) -> None:
    leases = _FlakyLeases(app.store)
    lease = await leases.acquire("test.flaky", coordinator.Holder.current("flaky"), ttl_s=3)
    assert lease is not None
    kept = coordinator.KeptLease(leases, lease, every_s=0.2).start()
    await eventually(lambda: asyncio.sleep(0, kept.lease.token > lease.token), timeout=5)
    assert leases.failures == 0 and not kept.lost.is_set()
    assert await kept.release()


async def test_second_loop_is_refused_naming_the_holder(app: App) -> None:
    loop = app.settings.loop
    held = await coordinator.acquire_loop_lease(app.store, loop)
    with pytest.raises(coordinator.LoopAlreadyRunning) as refused:
        await coordinator.acquire_loop_lease(app.store, loop)
    holder = held.lease.holder
    assert f"host {holder.host} pid {holder.pid} since {holder.since}" in str(refused.value)
    # renewal keeps it past its TTL (2 s) while held
    token = held.lease.token
    await eventually(lambda: asyncio.sleep(0, held.lease.token > token + 3), timeout=30)
    with pytest.raises(coordinator.LoopAlreadyRunning):
        await coordinator.acquire_loop_lease(app.store, loop)
    assert await held.release()
    again = await coordinator.acquire_loop_lease(app.store, loop)
    assert again.lease.token > held.lease.token
    await again.release()


async def test_task_limits_and_expired_tasks(app: App, running: dict[str, HandlerRuntime]) -> None:
    tasks = coordinator.TaskCoordinator(
        app.store, app.settings.loop, running["coordinator-task-started"].producer
    )
    async with tasks.task("training", "train-a") as kept:
        assert await tasks.acquire("training", "train-b") is None
        assert kept.lease.token > 0
    [refused] = await events_on(app, "loop.task.refused")
    assert isinstance(refused, TaskRefused) and "train-a" in (refused.holder or "")
    abandoned = await tasks.acquire("evaluation", "eval-abandoned")  # never renewed, never finished
    assert abandoned is not None

    async def finished() -> list[TaskFinished] | None:
        found = {e.task_id: e.outcome for e in await events_on(app, "loop.task.finished")}
        return found if found.get("eval-abandoned") else None  # type: ignore[return-value]

    outcomes = await eventually(finished, timeout=60)  # its lease's TTL, then the expiry scan
    assert outcomes == {"train-a": "succeeded", "eval-abandoned": "expired"}


# ------------------------------------------------------------ rebuild and explain


async def test_every_projection_rebuilds_to_the_live_state(
    app: App, running: dict[str, HandlerRuntime], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    for name in MINE:
        runner = app.projection_runner(name)
        await app.refresh(name)
        [rebuilt] = await rebuild(app, [name], tmp_path / f"{name}.db")
        assert rebuilt.position == runner.position
        assert rebuilt.state.snapshot() == runner.state.snapshot(), name
    assert await check(app, MINE) == []


async def test_explain_follows_the_causal_chain(
    app: App, running: dict[str, HandlerRuntime]
) -> None:
    config = "square19_3p"
    seqs = await app.store.append_many([game(config, i) for i in range(1, 7)])
    [request] = await count_at_least(app, f"loop.training.requested.{config}", 1)
    assert isinstance(request, TrainingRequested)
    done = request.caused(TrainingCompleted, "done", **trained(config, "x1", request.training_id).model_dump(
        include={"config", "training_id", "model_id", "artifact", "losses", "samples", "data", "generation"}))  # fmt: skip
    await app.store.append(done)
    evaluated = done.caused(EvaluationCompleted, "eval", config=config, evaluation_id="eval-x1", candidate="x1",
                            results=[result("random", 0.9), result("heuristic", 0.8)])  # fmt: skip
    await app.store.append(evaluated)
    await app.store.append(MatchCompleted(config=config, match_id="x1-m", context_id="eval-x1", participants=[
        {"participant_id": "x1", "rank": 1, "model_sha256": sha("x1")}, {"participant_id": "random", "rank": 2}]))  # fmt: skip
    decision = await decision_for(app, config, "x1")
    await count_at_least(app, f"loop.elo.updated.{config}", 1)
    explained = await explain_model(app.store, "x1")
    assert explained.games is not None and explained.games["count"] == 6 == explained.games["found"]
    assert (explained.games["first_seq"], explained.games["last_seq"]) == (seqs[0], seqs[-1])
    assert explained.training and explained.training["training_id"] == request.training_id
    assert [d["kind"] for d in explained.decisions] == ["promoted"] and explained.ratings[
        "rated_games"
    ] == 1
    chain = [step["type"] for step in explained.chain]
    assert chain == ["(outside RINGLOOP_LOG)", "training.requested", "training.completed",
                     "evaluation.completed", "model.promoted"]  # fmt: skip
    assert explained.chain[-1]["event_id"] == decision.event_id
    text = render(explained)
    assert "by gate floors" in text and request.training_id in text and "causal chain" in text
