"""The play stages on a real nats-server: selfplay records, trainer, evaluator, crash recovery."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import torch

from engine import GameConfig, GameState, Move
from engine.network import load_checkpoint
from events import (
    GAMES_STREAM,
    LOG_STREAM,
    EvaluationCompleted,
    EvaluationStarted,
    Event,
    GameCompleted,
    GameRange,
    MatchCompleted,
    ModelPromoted,
    ModelRegistered,
    Producer,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
    TrainingStarted,
)
from events.streams import games_subject
from handlers.models import ModelRef, best_model
from handlers.samples import SampleCache, game_samples, load_samples
from handlers.selfplay import play_selfplay_batch, selfplay_search
from handlers.trainer import drawn
from ops.app import App
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings
from tests.conftest import repo_root
from tests.play import events_on, of, selfplay_range, stages_running, worker

CONFIG = "square8_2p"

MAX_SAMPLES = 64  # below the positions of the module's selfplay games: the trainer draws


@pytest.fixture(scope="module")
def settings(nats_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    return load_settings(
        None,
        state_dir=str(state),
        nats__url=nats_server.url,
        loop={"preset": "tiny", "training": {"max_samples": MAX_SAMPLES}},
    )


@pytest_asyncio.fixture(scope="module")
async def selfplay_games(app: App) -> GameRange:
    return await selfplay_range(app, CONFIG, batches=2)


@pytest_asyncio.fixture(scope="module")
async def gated(app: App, selfplay_games: GameRange) -> TrainingCompleted:
    """CONFIG's first model: trained from the selfplay games, then gated to its verdict, with
    the trainer, the gate and an evaluator running in this process (before any model of
    CONFIG is best, so the gate plays the baselines only)."""
    async with stages_running(app, "trainer", "gating", "evaluator"):
        await app.store.append(request(CONFIG, selfplay_games, "train-1"))
        completed = await training_of(app, CONFIG, "train-1", timeout=180)
        await events_on(app, f"loop.eval.completed.{CONFIG}", timeout=180)
    assert isinstance(completed, TrainingCompleted)
    return completed


@pytest_asyncio.fixture(scope="module")
async def best(app: App, gated: TrainingCompleted) -> ModelRef:
    """The gated model, promoted: CONFIG's best from here on (in every later test)."""
    await app.store.append(
        ModelPromoted(
            config=CONFIG,
            model_id=gated.model_id,
            gate="test",
            statistic=1.0,
            threshold=0.5,
            reason="the module's best",
        )  # fmt: skip
    )
    await app.refresh("registry")
    found = best_model(app.runners["registry"].state, CONFIG)
    assert found is not None and found.artifact == gated.artifact
    return found


@pytest_asyncio.fixture()
async def trainer_running(app: App) -> AsyncIterator[None]:
    """The trainer stage in this process, for one test."""
    async with stages_running(app, "trainer"):
        yield


async def training_of(app: App, config: str, training_id: str, timeout: float = 30) -> Event:
    """The TrainingCompleted of ``training_id``, once it is stored."""
    subject = f"loop.training.completed.{config}"

    async def poll() -> Event:
        while True:
            stored = [s.event for s in await app.store.read_all(LOG_STREAM, subject)]
            if found := of(stored, training_id=training_id):
                return found[0]
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


def replay(record: GameCompleted) -> GameState:
    state = GameState.initial(GameConfig.parse(record.config))
    for notation in record.moves:
        state.apply(Move.from_notation(notation))  # raises IllegalMoveError on an illegal move
    return state


async def test_selfplay_records_replay_legally_with_visits(
    app: App, selfplay_games: GameRange
) -> None:
    tiny = app.settings.loop.selfplay
    stored = await app.store.read_all(GAMES_STREAM, selfplay_games.subject,
                                      start_seq=selfplay_games.first_seq,
                                      end_seq=selfplay_games.last_seq)  # fmt: skip
    assert len(stored) == selfplay_games.count == 2 * tiny.games_per_task
    for item in stored:
        record = item.event
        assert isinstance(record, GameCompleted) and record.purpose == "selfplay"
        state = replay(record)
        assert state.is_over or len(record.moves) == tiny.max_moves
        assert record.visits is not None and len(record.visits) == len(record.moves)
        searched = [v for v in record.visits if v]
        assert searched, "a selfplay game must carry visit distributions"
        assert record.root_values is not None and len(record.root_values) == len(record.moves)
        for ply, visits in enumerate(record.visits):
            if visits:
                assert (
                    record.moves[ply] in visits
                    and sum(visits.values())
                    == tiny.bootstrap_simulations - 1  # the first expands the root
                )
            root = record.root_values[ply]
            assert (root is not None) == bool(visits)  # a root value for each searched move
            assert root is None or (len(root) == 2 and all(-1 <= v <= 1 for v in root))
        assert sorted(record.ranking) in ([1, 2], [1, 1])
    samples = game_samples(stored[0].event)  # type: ignore[arg-type]
    assert samples and all(len(s.policy[0]) >= 1 for s in samples)


def request(config: str, games: GameRange, training_id: str, **fields: object) -> TrainingRequested:
    return TrainingRequested(config=config, training_id=training_id, games=games, **fields)  # type: ignore[arg-type]


def test_a_training_draws_at_most_max_samples_the_same_way_for_the_same_seed() -> None:
    window = list(range(1000))
    assert drawn(window, None, 7) is window and drawn(window, 1000, 7) is window
    first = drawn(window, 100, 7)
    assert len(first) == len(set(first)) == 100 and set(first) <= set(window)
    assert drawn(window, 100, 7) == first and drawn(window, 100, 8) != first


async def test_trainer_stores_a_checkpoint_and_registers_the_model(
    app: App, gated: TrainingCompleted, selfplay_games: GameRange, tmp_path: Path
) -> None:
    completed = gated
    [registered] = of(await events_on(app, f"loop.model.registered.{CONFIG}"),
                      model_id=completed.model_id)  # fmt: skip
    [started] = of(await events_on(app, f"loop.training.started.{CONFIG}"), training_id="train-1")
    assert isinstance(completed, TrainingCompleted) and isinstance(registered, ModelRegistered)
    assert isinstance(started, TrainingStarted) and started.parent_model_id is None
    assert completed.losses and completed.data == selfplay_games
    cache = SampleCache(tmp_path / "samples.db")
    try:
        window, _ = await load_samples(app.store, selfplay_games, cache)
    finally:
        cache.close()
    assert len(window) > MAX_SAMPLES and completed.samples == MAX_SAMPLES  # a draw, not all
    assert registered.model_id == completed.model_id and registered.artifact == completed.artifact
    bucket = await app.store.js.object_store(completed.artifact.bucket)
    data = (await bucket.get(completed.artifact.name)).data
    assert data is not None and hashlib.sha256(data).hexdigest() == completed.artifact.sha256
    assert len(data) == completed.artifact.size
    payload = torch.load(io.BytesIO(data), weights_only=True)
    assert payload["spec"]["blocks"] == app.settings.loop.training.networks["square8"].blocks
    network, spec = load_checkpoint(data)
    assert spec.config == CONFIG and not network.training
    # the outcome is appended with its TrainingStarted, which was stamped first
    assert started.occurred_at <= completed.occurred_at


async def test_the_gate_is_played_as_work_items_and_decided_once(
    app: App, gated: TrainingCompleted
) -> None:
    completed = gated
    [summary] = await events_on(app, f"loop.eval.completed.{CONFIG}")
    [started] = await events_on(app, f"loop.eval.started.{CONFIG}")
    assert isinstance(summary, EvaluationCompleted) and isinstance(started, EvaluationStarted)
    evaluation = app.settings.loop.evaluation
    assert started.opponents == ["random", "heuristic"] and summary.candidate == completed.model_id
    assert started.games == {
        "random": evaluation.baseline_games,
        "heuristic": evaluation.baseline_games,
    }
    assert summary.evaluation_id == started.evaluation_id == f"eval-{completed.training_id}"  # type: ignore[attr-defined]
    assert [r.opponent for r in summary.results] == started.opponents
    assert all(r.wins + r.losses + r.draws == r.games for r in summary.results)
    assert all(0 <= r.wilson_low <= r.score <= r.wilson_high <= 1 for r in summary.results)
    assert all(
        r.games == evaluation.baseline_games or r.sprt != "continue" for r in summary.results
    )
    matches = [
        m
        for m in await events_on(app, f"loop.match.completed.{CONFIG}")
        if isinstance(m, MatchCompleted) and m.context_id == summary.evaluation_id
    ]
    counted = sum(r.games for r in summary.results)
    # every game the decider saw is in the summary once; later ones were in flight already
    assert len(matches) >= counted and len({m.match_id for m in matches}) == len(matches)
    assert all(m.context == "evaluation" for m in matches)
    sha = completed.artifact.sha256  # type: ignore[attr-defined]
    for match in matches:
        candidate = next(p for p in match.participants if p.participant_id == completed.model_id)
        assert candidate.model_sha256 == sha and candidate.config == CONFIG
    evals = await app.store.read_all(GAMES_STREAM, games_subject(CONFIG, "eval"))
    assert {s.event.game_id for s in evals} >= {m.game_id for m in matches}  # type: ignore[attr-defined]
    app.start_views(["gating"], None)
    await app.refresh("gating")
    from projections.gating import gate

    row = gate(app.runners["gating"].state, summary.evaluation_id)
    assert row is not None and row["counted"] == counted
    assert row["counted"] + row["surplus"] == len(matches)


async def test_selfplay_swaps_in_a_promoted_model_and_trainer_refuses_random_init(
    app: App, trainer_running: None, gated: TrainingCompleted, selfplay_games: GameRange
) -> None:
    # the trained weights under a new name, promoted below: a model no worker has played
    await app.store.append(ModelRegistered(config=CONFIG, model_id="swap-in", generation=2,
                                           artifact=gated.artifact))  # fmt: skip
    await app.refresh("registry")
    player = worker(app)
    playing = player.model_of(CONFIG)  # the registry's best at first use (none, or another)
    assert playing is None or playing.model_id != "swap-in"
    promotion = ModelPromoted(config=CONFIG, model_id="swap-in", gate="test", statistic=1.0,
                              threshold=0.5, reason="test")  # fmt: skip
    await app.store.append(promotion)
    await app.refresh("registry")
    # a worker keeps the model it plays with until the promotion reaches it
    assert player.model_of(CONFIG) == playing
    from handlers.selfplay import on_model_changed

    [promoted] = of(await events_on(app, f"loop.model.promoted.{CONFIG}"),
                    event_id=promotion.event_id)  # fmt: skip
    on_model_changed(promoted, registry=app.runners["registry"].state, worker=player)
    model = player.model_of(CONFIG)
    assert model is not None and model.model_id == "swap-in"
    _, network = await player._network_for(CONFIG)
    loop = app.settings.loop
    search = selfplay_search(loop, app.runners["feedback"].state, CONFIG, bootstrap=False)
    assert search.simulations == loop.selfplay.simulations
    games = play_selfplay_batch(GameConfig.parse(CONFIG), loop, search, seed=5,
                                producer=Producer.current("t"), network=network, model=model,
                                games=1)  # fmt: skip
    assert games[0].model_id == "swap-in"
    assert games[0].seats[0].model_sha256 == gated.artifact.sha256

    # square8_3p has a best model whose weights are gone: training from random is refused
    other = "square8_3p"
    await app.store.append(ModelRegistered(config=other, model_id="ghost", generation=1))
    await app.store.append(
        ModelPromoted(
            config=other, model_id="ghost", gate="test", statistic=1.0, threshold=0.5, reason="test"
        )
    )
    await app.refresh("registry")
    assert best_model(app.runners["registry"].state, other) is not None
    await app.store.append(request(other, selfplay_games, "train-refused"))
    [failed] = await events_on(app, f"loop.training.failed.{other}")
    assert isinstance(failed, TrainingFailed) and failed.reason == "refused_random_init"
    assert "ghost" in failed.error
    assert await app.store.read_all(LOG_STREAM, f"loop.training.completed.{other}") == []


async def test_a_running_selfplay_stage_swaps_weights_on_promotion(app: App) -> None:
    """The selfplay stage's own worker: its subscription, not a poll, moves it to the new best."""
    from handlers.runtime import HandlerRuntime

    config = "hex8_2p"
    artifact = {"bucket": "ringloop-models", "name": "x.pt", "sha256": "b" * 64, "size": 1}
    await app.store.append(
        ModelRegistered(config=config, model_id="hex-m", generation=1, artifact=artifact)  # type: ignore[arg-type]
    )
    wiring = app.stage("selfplay")
    [promoted_spec, rolled_spec] = wiring.specs()
    assert promoted_spec.per_process and rolled_spec.per_process
    stage_worker = wiring.dependency("worker")
    await app.refresh("registry")
    assert stage_worker.model_of(config) is None  # no best yet: the bootstrap search plays
    runtime = HandlerRuntime(promoted_spec, app.store)
    await runtime.ensure_consumer()  # new events only, from here on
    task = asyncio.create_task(runtime.run())
    try:
        await app.store.append(
            ModelPromoted(
                config=config,
                model_id="hex-m",
                gate="test",
                statistic=1.0,
                threshold=0.5,
                reason="swap test",
            )  # fmt: skip
        )

        async def swapped() -> None:
            while stage_worker.model_of(config) is None:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(swapped(), 20)
    finally:
        runtime.stop()
        await task
    assert stage_worker.model_of(config).model_id == "hex-m"  # type: ignore[union-attr]


# ---------------------------------------------------------------- crash recovery


@pytest.fixture()
def trainer_process(settings: Settings, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(120)


def start_trainer(settings: Settings, state: Path, epochs: int) -> subprocess.Popen[bytes]:
    """`ringloop run trainer` against the fixture server, training ``epochs`` epochs."""
    state.mkdir(exist_ok=True)
    (state / "settings.toml").write_text(
        f'[loop]\npreset = "tiny"\n[loop.training]\nepochs = {epochs}\n'
    )
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    command = [
        sys.executable,
        "-m",
        "ops",
        "run",
        "trainer",
        "--nats",
        str(settings.nats.url),
        "--state-dir",
        str(state),
    ]
    log = (state / "stderr.log").open("wb")
    return subprocess.Popen(command, env=env, cwd=repo_root(), stdout=log, stderr=log)


async def test_trainer_killed_mid_run_completes_exactly_once(
    app: App,
    settings: Settings,
    trainer_process: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    config = "square8_4p"  # a config no other test trains; 4-player games for it
    games = await selfplay_range(app, config, seed=9)
    first = start_trainer(settings, tmp_path / "one", epochs=60)  # long enough to be killed
    trainer_process.append(first)
    await app.store.append(request(config, games, "train-crash"))

    async def holding_the_slot() -> None:  # the training runs once its lease is taken
        while not of(await events_on(app, "loop.task.started"), task_id="train-crash"):
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(holding_the_slot(), 120)  # the process starts (torch) first
    except TimeoutError:
        raise AssertionError((tmp_path / "one" / "stderr.log").read_text()[-3000:]) from None
    first.kill()  # SIGKILL mid-training: no ack, no drain
    assert await asyncio.to_thread(first.wait, 60) == -signal.SIGKILL
    assert await app.store.read_all(LOG_STREAM, f"loop.training.completed.{config}") == []
    second = start_trainer(settings, tmp_path / "two", epochs=2)
    trainer_process.append(second)
    try:
        [completed] = await events_on(app, f"loop.training.completed.{config}", timeout=180)
    except TimeoutError:
        raise AssertionError((tmp_path / "two" / "stderr.log").read_text()[-3000:]) from None
    second.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(second.wait, 120) == 0  # drained cleanly
    assert len(await app.store.read_all(LOG_STREAM, f"loop.training.completed.{config}")) == 1
    assert len(await app.store.read_all(LOG_STREAM, f"loop.model.registered.{config}")) == 1
    assert isinstance(completed, TrainingCompleted) and completed.training_id == "train-crash"
    assert completed.producer.pid == second.pid  # the restarted process finished the work
    assert [loss.epoch for loss in completed.losses] == [1, 2]  # with its own settings, whole


async def test_out_of_memory_fails_the_training_and_feedback_knobs_apply(
    app: App, best: ModelRef, selfplay_games: GameRange, monkeypatch: pytest.MonkeyPatch
) -> None:
    from events import FeedbackSignalRaised
    from handlers import trainer

    await app.store.append(
        FeedbackSignalRaised(
            config=CONFIG,
            signal="out_of_memory",
            knob="training.batch_size",
            old_value=32,
            new_value=16,
        )
    )
    await app.refresh("feedback")
    loop, feedback = app.settings.loop, app.runners["feedback"].state
    assert trainer.fit_settings(loop, feedback, CONFIG).batch_size == 16
    await app.refresh("registry")
    current = best_model(app.runners["registry"].state, CONFIG)  # `best`, or one swapped in since
    assert current is not None and current.artifact == best.artifact
    bucket = await app.store.js.object_store(best.artifact.bucket)  # type: ignore[union-attr]
    best_bytes = (await bucket.get(best.artifact.name)).data  # type: ignore[union-attr]
    assert best_bytes
    seen: dict[str, object] = {}

    def out_of_memory(*args: object, **kwargs: object) -> None:
        seen["init"], seen["batch_size"] = kwargs.get("init"), args[1].batch_size  # type: ignore[attr-defined]
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "fit", out_of_memory)
    workspace = trainer.Workspace(app.store, app.settings.state_dir)
    await app.refresh("pipeline")
    # handled directly (not appended), so no trainer consumer ever sees this request
    result = await trainer.on_training_requested(
        request(CONFIG, selfplay_games, "train-oom"),
        registry=app.runners["registry"].state,
        pipeline=app.runners["pipeline"].state,
        feedback=feedback,
        workspace=workspace,
        settings=loop,
        producer=Producer.current("trainer"),
    )
    assert result is not None
    started, failed = result.events
    assert isinstance(started, TrainingStarted) and started.parent_model_id == current.model_id
    assert isinstance(failed, TrainingFailed) and failed.reason == "oom"
    assert "out of memory" in failed.error
    assert seen == {"init": best_bytes, "batch_size": 16}  # warm start from the best; knob applied


def test_bootstrap_selfplay_searches_from_heuristic_root_priors() -> None:
    from engine.players import HeuristicRootEvaluator
    from handlers.agents import bootstrap_agent, search_settings
    from handlers.settings import LoopSettings

    tiny = LoopSettings.profile("tiny")
    agent = bootstrap_agent(tiny, search_settings(tiny, "bootstrap"))
    assert isinstance(agent.evaluator, HeuristicRootEvaluator) and agent.noise
    assert agent.evaluator.root_temperature == tiny.selfplay.bootstrap_root_temperature
    assert agent.search is not None
    assert agent.search.simulations == tiny.selfplay.bootstrap_simulations
    assert agent.participant_id == f"bootstrap-mcts-{tiny.selfplay.bootstrap_simulations}"
    evaluation = search_settings(tiny, "evaluation")
    assert evaluation.dirichlet_fraction == 0.0
    assert evaluation.temperature_moves == tiny.evaluation.temperature_moves
    assert evaluation.simulations == tiny.evaluation.simulations


def test_multiplayer_gating_rotates_seats_and_fills_them_with_distinct_baselines() -> None:
    from events import TrainingCompleted
    from handlers.gating import on_training_completed
    from handlers.settings import LoopSettings
    from projections.gating import GatingProjection, planned_opponents
    from projections.registry import RegistryProjection

    tiny = LoopSettings.profile("tiny")
    artifact = {"bucket": "b", "name": "n", "sha256": "a" * 64, "size": 1}
    trained = TrainingCompleted(config="square8_4p", training_id="t4", model_id="cand",
                                artifact=artifact, losses=[], samples=1, samples_per_s=1.0,
                                duration_s=1.0, data=GameRange(subject="games.square8.4p.selfplay",
                                first_seq=1, last_seq=1, count=1), generation=1)  # type: ignore[arg-type]  # fmt: skip
    out = on_training_completed(trained, registry=RegistryProjection().initial(),
                                gating=GatingProjection().initial(), settings=tiny,
                                producer=Producer.current("t"))  # fmt: skip
    assert out is not None
    started, *items = out
    assert isinstance(started, EvaluationStarted) and started.opponents == ["random", "heuristic"]
    assert len(items) == 2 * tiny.evaluation.baseline_games
    plan = planned_opponents(started.opponents, started.games)
    assert plan[:4] == ["random", "heuristic", "random", "heuristic"]  # interleaved
    vs_random = [i for i, o in zip(items, plan, strict=True) if o == "random"]
    lineup = ["cand", "random", "heuristic", "mcts-16"]
    for game, item in enumerate(vs_random):
        seats = [s.participant_id for s in item.seats]  # type: ignore[attr-defined]
        assert seats == lineup[game % 4 :] + lineup[: game % 4]  # every seat in turn
        assert item.context == "evaluation" and item.tournament_id == "eval-t4"  # type: ignore[attr-defined]
    assert len({i.event_id for i in items}) == len(items)


async def test_training_window_and_curriculum_choice(
    app: App, selfplay_games: GameRange, tmp_path: Path
) -> None:
    import random

    from handlers.samples import SampleCache, load_samples
    from handlers.selfplay import choose_config

    cache = SampleCache(tmp_path / "samples.db")
    everything, used = await load_samples(app.store, selfplay_games, cache)
    assert used == selfplay_games.count and everything
    one = GameRange(subject=selfplay_games.subject, first_seq=selfplay_games.last_seq,
                    last_seq=selfplay_games.last_seq, count=1)  # fmt: skip
    newest, used = await load_samples(app.store, one, cache)  # cached now
    assert used == 1 and 0 < len(newest) < len(everything)
    cache.close()
    rng = random.Random(1)
    picks = [
        choose_config({"square8_2p": 0.0, "hex8_2p": 5.0}, ["square8_2p", "hex8_2p"], rng).name
        for _ in range(20)
    ]
    assert set(picks) == {"hex8_2p"}
    assert choose_config({}, ["square8_3p"], rng).name == "square8_3p"


async def test_selfplay_daemon_plays_in_a_child_process_until_stopped(app: App) -> None:
    from handlers.selfplay import new_worker, run_worker
    from ops.wiring import LiveViews

    subject = games_subject(CONFIG, "selfplay")
    before = await app.store.last_seq(GAMES_STREAM, subject)
    stop = asyncio.Event()
    views = ["registry", "curriculum", "feedback"]
    app.start_views(views, None)  # the views the worker reads (no earlier test started them)
    player = new_worker(app.store, app.settings.loop, LiveViews(app, views), app.settings.state_dir)
    daemon = asyncio.create_task(run_worker(player, stop))

    async def appended() -> None:
        while await app.store.last_seq(GAMES_STREAM, subject) <= before:
            await asyncio.sleep(0.1)

    await asyncio.wait_for(appended(), 180)  # the child starts (torch) and plays a batch
    stop.set()
    done = await asyncio.wait_for(daemon, 180)
    assert done.child is not None and done.games >= app.settings.loop.selfplay.games_per_task
    new = await app.store.read_all(GAMES_STREAM, subject, start_seq=before + 1)
    assert len(new) == done.games  # a batch is appended whole or not at all
