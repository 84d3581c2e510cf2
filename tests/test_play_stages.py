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
from handlers.play_common import best_model, play_settings
from handlers.runtime import HandlerRuntime, HandlerSpec
from handlers.selfplay import SelfplayWorker, play_selfplay_batch
from handlers.trainer import game_samples
from ops.app import App
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings
from ops.wiring_play import stop_daemons
from tests.conftest import repo_root

CONFIG = "square8_2p"
TINY = play_settings({"preset": "tiny"})


@pytest.fixture(scope="module")
def settings(nats_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    return load_settings(
        None, state_dir=str(state), nats__url=nats_server.url, loop={"preset": "tiny"}
    )


async def events_on(app: App, subject: str, count: int = 1, timeout: float = 30) -> list[Event]:
    """Wait until `subject` holds at least `count` events; return them all."""

    async def poll() -> list[Event]:
        while True:
            stored = await app.store.read_all(LOG_STREAM, subject)
            if len(stored) >= count:
                return [s.event for s in stored]
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


async def supervised(runtime: HandlerRuntime) -> None:
    """Run a handler runtime, restarting it after a stray fetch timeout.

    nats-py's fetch sometimes raises the builtin TimeoutError, which HandlerRuntime.run
    (catching nats.errors.TimeoutError only) lets escape; reported to the runtime's owner.
    """
    while True:
        try:
            await runtime.run()
            return
        except TimeoutError:
            continue


@pytest_asyncio.fixture()
async def specs(app: App) -> AsyncIterator[list[HandlerSpec]]:
    """Fresh specs per test: stopping a runtime stops its spec's daemon and work for good."""
    yield [app.handler_spec(name) for name in ("trainer", "evaluator")]
    await stop_daemons()  # the evaluator's tournament-work loop


@pytest_asyncio.fixture()
async def handlers(app: App, specs: list[HandlerSpec]) -> AsyncIterator[None]:
    """The trainer and evaluator in this process, for one test (they drain at its end)."""
    runtimes = [HandlerRuntime(spec, app.store) for spec in specs]
    tasks = [asyncio.create_task(supervised(r)) for r in runtimes]
    yield
    for runtime in runtimes:
        runtime.stop()
    await asyncio.gather(*tasks)


@pytest_asyncio.fixture(scope="module")
async def selfplay_games(app: App) -> AsyncIterator[GameRange]:
    worker = SelfplayWorker(app.store, TINY, app.settings.state_dir / "cache")
    import random

    rng = random.Random(3)
    for _ in range(2):
        await worker.batch(rng)
    stored = await app.store.read_all(GAMES_STREAM, games_subject(CONFIG, "selfplay"))
    yield GameRange(
        subject=games_subject(CONFIG, "selfplay"),
        first_seq=stored[0].seq,
        last_seq=stored[-1].seq,
        count=len(stored),
    )


def replay(record: GameCompleted) -> GameState:
    state = GameState.initial(GameConfig.parse(record.config))
    for notation in record.moves:
        state.apply(Move.from_notation(notation))  # raises IllegalMoveError on an illegal move
    return state


async def test_selfplay_records_replay_legally_with_visits(
    app: App, selfplay_games: GameRange
) -> None:
    stored = await app.store.read_all(GAMES_STREAM, selfplay_games.subject)
    assert len(stored) == 2 * TINY.parallel_games
    for item in stored:
        record = item.event
        assert isinstance(record, GameCompleted) and record.purpose == "selfplay"
        state = replay(record)
        assert state.is_over or len(record.moves) == TINY.max_moves
        assert record.visits is not None and len(record.visits) == len(record.moves)
        searched = [v for v in record.visits if v]
        assert searched, "a selfplay game must carry visit distributions"
        assert record.root_values is not None and len(record.root_values) == len(record.moves)
        for ply, visits in enumerate(record.visits):
            if visits:
                assert (
                    record.moves[ply] in visits
                    and sum(visits.values())
                    == TINY.bootstrap_simulations - 1  # the first expands the root
                )
            root = record.root_values[ply]
            assert (root is not None) == bool(visits)  # a root value for each searched move
            assert root is None or (len(root) == 2 and all(-1 <= v <= 1 for v in root))
        assert sorted(record.ranking) in ([1, 2], [1, 1])
    samples = game_samples(stored[0].event)  # type: ignore[arg-type]
    assert samples and all(len(s.policy[0]) >= 1 for s in samples)


def request(config: str, games: GameRange, training_id: str, **fields: object) -> TrainingRequested:
    return TrainingRequested(config=config, training_id=training_id, games=games, **fields)  # type: ignore[arg-type]


async def test_trainer_stores_a_checkpoint_and_registers_the_model(
    app: App, handlers: None, selfplay_games: GameRange
) -> None:
    await app.store.append(request(CONFIG, selfplay_games, "train-1"))
    [completed] = await events_on(app, f"loop.training.completed.{CONFIG}")
    [registered] = await events_on(app, f"loop.model.registered.{CONFIG}")
    [started] = await events_on(app, f"loop.training.started.{CONFIG}")
    assert isinstance(completed, TrainingCompleted) and isinstance(registered, ModelRegistered)
    assert isinstance(started, TrainingStarted) and started.parent_model_id is None
    assert completed.samples > 0 and completed.losses and completed.data == selfplay_games
    assert registered.model_id == completed.model_id and registered.artifact == completed.artifact
    bucket = await app.store.js.object_store(completed.artifact.bucket)
    data = (await bucket.get(completed.artifact.name)).data
    assert data is not None and hashlib.sha256(data).hexdigest() == completed.artifact.sha256
    assert len(data) == completed.artifact.size
    payload = torch.load(io.BytesIO(data), weights_only=True)
    assert payload["spec"]["blocks"] == TINY.blocks["square8"]
    network, spec = load_checkpoint(data)
    assert spec.config == CONFIG and not network.training


async def test_evaluator_plays_the_gating_match(app: App, handlers: None) -> None:
    [completed] = await events_on(app, f"loop.training.completed.{CONFIG}")
    [summary] = await events_on(app, f"loop.eval.completed.{CONFIG}", timeout=60)
    [started] = await events_on(app, f"loop.eval.started.{CONFIG}")
    assert isinstance(summary, EvaluationCompleted) and isinstance(started, EvaluationStarted)
    assert started.opponents == ["random", "heuristic"] and summary.candidate == completed.model_id
    games = sum(r.games for r in summary.results)
    assert games >= 2 and all(r.wins + r.losses + r.draws == r.games for r in summary.results)
    assert all(0 <= r.wilson_low <= r.score <= r.wilson_high <= 1 for r in summary.results)
    matches = [
        m
        for m in await events_on(app, f"loop.match.completed.{CONFIG}", games)
        if isinstance(m, MatchCompleted) and m.context_id == summary.evaluation_id
    ]
    assert len(matches) == games
    sha = completed.artifact.sha256  # type: ignore[attr-defined]
    for match in matches:
        candidate = next(p for p in match.participants if p.participant_id == completed.model_id)
        assert candidate.model_sha256 == sha and candidate.config == CONFIG
    evals = await app.store.read_all(GAMES_STREAM, games_subject(CONFIG, "eval"))
    assert {s.event.game_id for s in evals} >= {m.game_id for m in matches}  # type: ignore[attr-defined]


async def test_selfplay_swaps_in_a_promoted_model_and_trainer_refuses_random_init(
    app: App, handlers: None, selfplay_games: GameRange
) -> None:
    [completed] = await events_on(app, f"loop.training.completed.{CONFIG}")
    worker = SelfplayWorker(app.store, TINY, app.settings.state_dir / "cache")
    assert await worker.network_for(CONFIG) == (None, None)
    await app.store.append(
        ModelPromoted(
            config=CONFIG,
            model_id=completed.model_id,
            gate="test",
            statistic=1.0,
            threshold=0.5,
            reason="test",
        )  # type: ignore[attr-defined]
    )
    model, network = await worker.network_for(CONFIG)
    assert model is not None and network is not None and model.model_id == completed.model_id  # type: ignore[attr-defined]
    games = play_selfplay_batch(
        GameConfig.parse(CONFIG),
        TINY,
        seed=5,
        producer=Producer.current("t"),
        network=network,
        model=model,
        games=1,
    )
    assert (
        games[0].model_id == completed.model_id
        and games[0].seats[0].model_sha256 == model.artifact.sha256
    )  # type: ignore[union-attr,attr-defined]

    # square8_3p has a best model whose weights are gone: training from random is refused
    other = "square8_3p"
    await app.store.append(ModelRegistered(config=other, model_id="ghost", generation=1))
    await app.store.append(
        ModelPromoted(
            config=other, model_id="ghost", gate="test", statistic=1.0, threshold=0.5, reason="test"
        )
    )
    assert (await best_model(app.store, other)) is not None
    await app.store.append(request(other, selfplay_games, "train-refused"))
    [failed] = await events_on(app, f"loop.training.failed.{other}")
    assert isinstance(failed, TrainingFailed) and failed.reason == "refused_random_init"
    assert "ghost" in failed.error
    assert await app.store.read_all(LOG_STREAM, f"loop.training.completed.{other}") == []


# ---------------------------------------------------------------- crash recovery


@pytest.fixture()
def trainer_process(settings: Settings, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(20)


def start_trainer(settings: Settings, state: Path) -> subprocess.Popen[bytes]:
    """`ringloop run trainer` against the fixture server, training long enough to be killed."""
    state.mkdir(exist_ok=True)
    (state / "settings.toml").write_text('[loop]\npreset = "tiny"\n[loop.training]\nepochs = 60\n')
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
    selfplay_games: GameRange,
    trainer_process: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    config = "square8_4p"  # a config no other test trains; 4-player games for it
    worker = SelfplayWorker(app.store, TINY.model_copy(update={"configs": (config,)}), tmp_path)
    import random

    await worker.batch(random.Random(9))
    stored = await app.store.read_all(GAMES_STREAM, games_subject(config, "selfplay"))
    games = GameRange(
        subject=games_subject(config, "selfplay"),
        first_seq=stored[0].seq,
        last_seq=stored[-1].seq,
        count=len(stored),
    )
    first = start_trainer(settings, tmp_path / "one")
    trainer_process.append(first)
    await app.store.append(request(config, games, "train-crash"))
    await events_on(app, f"loop.training.started.{config}", timeout=40)
    first.kill()  # SIGKILL mid-training: no ack, no drain
    assert first.wait(10) == -signal.SIGKILL
    assert await app.store.read_all(LOG_STREAM, f"loop.training.completed.{config}") == []
    second = start_trainer(settings, tmp_path / "two")
    trainer_process.append(second)
    try:
        [completed] = await events_on(app, f"loop.training.completed.{config}", timeout=180)
    except TimeoutError:
        raise AssertionError((tmp_path / "two" / "stderr.log").read_text()[-3000:]) from None
    second.send_signal(signal.SIGTERM)
    second.wait(20)
    assert len(await app.store.read_all(LOG_STREAM, f"loop.training.completed.{config}")) == 1
    assert len(await app.store.read_all(LOG_STREAM, f"loop.model.registered.{config}")) == 1
    assert isinstance(completed, TrainingCompleted) and completed.training_id == "train-crash"
    assert completed.producer.pid == second.pid  # the restarted process finished the work


async def test_out_of_memory_fails_the_training_and_feedback_knobs_apply(
    app: App, selfplay_games: GameRange, monkeypatch: pytest.MonkeyPatch
) -> None:
    from events import FeedbackSignalRaised
    from handlers import trainer
    from handlers.play_common import tuned

    await app.store.append(
        FeedbackSignalRaised(
            config=CONFIG,
            signal="out_of_memory",
            knob="training.batch_size",
            old_value=32,
            new_value=16,
        )
    )
    assert (await tuned(app.store, CONFIG, TINY)).batch_size == 16

    def out_of_memory(*args: object, **kwargs: object) -> None:
        assert kwargs.get("init") is None or isinstance(kwargs["init"], bytes)
        assert args[1].batch_size == 16  # type: ignore[attr-defined]  # the feedback knob applied
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "fit", out_of_memory)
    deps = trainer.TrainerDeps(app.store, TINY, app.settings.state_dir, Producer.current("trainer"))
    # handled directly (not appended), so no trainer consumer ever sees this request
    [failed] = await trainer.on_training_requested(
        request(CONFIG, selfplay_games, "train-oom"), deps
    )  # type: ignore[misc]
    assert (
        isinstance(failed, TrainingFailed)
        and failed.reason == "oom"
        and "out of memory" in failed.error
    )


def test_bootstrap_selfplay_searches_from_heuristic_root_priors() -> None:
    from engine.players import HeuristicRootEvaluator
    from handlers.selfplay import selfplay_agent

    agent = selfplay_agent(GameConfig.parse("square8_2p"), TINY, None, None)
    assert isinstance(agent.evaluator, HeuristicRootEvaluator) and agent.noise
    assert agent.evaluator.root_temperature == TINY.bootstrap_root_temperature
    assert agent.search is not None and agent.search.simulations == TINY.bootstrap_simulations
    assert agent.participant_id == f"bootstrap-mcts-{TINY.bootstrap_simulations}"


def test_multiplayer_gating_rotates_seats_and_fills_them_with_distinct_baselines() -> None:
    from engine.players.random_player import RandomPlayer
    from handlers.evaluator import head_to_heads, pair_score
    from handlers.play_common import Agent, play_games, tier_agent

    settings = TINY.model_copy(update={"max_moves": 30, "eval_round": 4})
    candidate = Agent("candidate", player=RandomPlayer())
    config = GameConfig.parse("square8_4p")
    [match] = head_to_heads(config, candidate, [tier_agent("random", settings)], settings)
    assert [a.participant_id for a in match.lineup] == [
        "candidate",
        "random",
        "heuristic",
        "mcts-16",
    ]
    seatings = match.next_round(settings)
    assert [s[0].participant_id for s in seatings] == [
        "candidate",
        "random",
        "heuristic",
        "mcts-16",
    ]
    played = play_games(config, seatings, [1, 2, 3, 4], settings)
    for game in played:
        assert sorted(a.participant_id for a in game.seats) == sorted(
            a.participant_id for a in match.lineup
        )
        assert len(game.ranking) == 4 and game.termination
        assert pair_score(game, "candidate", "random") in (0.0, 0.5, 1.0)


async def test_training_window_and_curriculum_choice(
    app: App, selfplay_games: GameRange, tmp_path: Path
) -> None:
    import random

    from handlers.selfplay import choose_config
    from handlers.trainer import SampleCache, load_samples

    cache = SampleCache(tmp_path / "samples.db")
    everything, used = await load_samples(app.store, selfplay_games, 100, 0, cache)
    assert used == selfplay_games.count and everything
    newest, used = await load_samples(app.store, selfplay_games, 1, 0, cache)  # cached now
    assert used == 1 and 0 < len(newest) < len(everything)
    _, used = await load_samples(app.store, selfplay_games, 100, 1, cache)  # bootstrap games: gen 0
    assert used == 0
    cache.close()
    rng = random.Random(1)
    picks = [
        choose_config({"square8_2p": 0.0, "hex8_2p": 5.0}, ["square8_2p", "hex8_2p"], rng).name
        for _ in range(20)
    ]
    assert set(picks) == {"hex8_2p"}
    assert choose_config({}, ["square8_3p"], rng).name == "square8_3p"


async def test_selfplay_daemon_plays_in_a_child_process_until_stopped(app: App) -> None:
    from handlers import selfplay

    subject = games_subject(CONFIG, "selfplay")
    before = await app.store.last_seq(GAMES_STREAM, subject)
    stop = asyncio.Event()
    daemon = asyncio.create_task(selfplay.run(app, stop))

    async def appended() -> None:
        while await app.store.last_seq(GAMES_STREAM, subject) <= before:
            await asyncio.sleep(0.1)

    await asyncio.wait_for(appended(), 30)
    stop.set()
    worker = await asyncio.wait_for(daemon, 30)
    assert worker.child is not None and worker.games >= TINY.parallel_games
    new = await app.store.read_all(GAMES_STREAM, subject, start_seq=before + 1)
    assert len(new) == worker.games  # a batch is appended whole or not at all
