"""The promoter's optimistic concurrency (README, "Promotion"): a decision appends only if the
config's model subjects are unchanged since the registry was read. A promoter that loses the
race re-reads the registry and decides again on what won; one that keeps losing gives up after
`conflict_retries` tries per delivery and is dead-lettered after max_deliver deliveries."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from events import (
    LOG_STREAM,
    EvaluationCompleted,
    Event,
    HandlerFailed,
    ModelPromoted,
    ModelRejected,
    TrainingCompleted,
)
from events.catalogue import ArtifactRef, EpochLoss, GameRange, OpponentResult
from events.subjects import subject_filters
from handlers.runtime import HandlerRuntime, HandlerSpec, run_until_stopped
from handlers.settings import LoopSettings
from ops.app import App
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings

LOOP = {"configs": ["square8_2p", "hex8_2p"], "evaluation": {"sprt": {"elo0": 0, "elo1": 50}}}


@pytest.fixture(scope="module")
def settings(nats_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    return load_settings(None, state_dir=str(state), nats__url=nats_server.url, loop=LOOP)


def trained(config: str, model_id: str) -> TrainingCompleted:
    digest = hashlib.sha256(model_id.encode()).hexdigest()
    return TrainingCompleted(
        config=config, training_id=f"t-{model_id}", model_id=model_id, samples=100, generation=1,
        artifact=ArtifactRef(name=f"{model_id}.pt", sha256=digest, size=10),
        losses=[EpochLoss(epoch=1, policy_loss=0.5, value_loss=0.5)],
        data=GameRange(subject=f"games.{config.replace('_', '.')}.selfplay", first_seq=1,
                       last_seq=1, count=1),
    )  # fmt: skip


def strong_evaluation(config: str, candidate: str) -> EvaluationCompleted:
    from handlers.gating import HeadToHead

    loop = LoopSettings.validated(LOOP)
    results: list[OpponentResult] = [
        HeadToHead(baseline, 40, 0, 0, 40).result(loop) for baseline in ("random", "heuristic")
    ]
    return EvaluationCompleted(
        config=config, evaluation_id=f"eval-{candidate}", candidate=candidate, results=results
    )


def decision(kind: type[ModelPromoted] | type[ModelRejected], config: str, model: str) -> Event:
    return kind(config=config, model_id=model, gate="floors", statistic=1.0, threshold=0.5,
                reason="decided by a rival promoter", evaluation_id=f"eval-{model}")  # fmt: skip


async def decisions(app: App, config: str) -> list[Any]:
    stored = await app.store.read_all(LOG_STREAM, f"loop.model.*.{config}")
    return [s.event for s in stored]


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def promoter_spec(app: App) -> HandlerSpec:
    [spec] = [
        s
        for s in app.stage("promoter").specs()
        if s.subjects == subject_filters(EvaluationCompleted)
    ]
    return spec


async def run_racing(
    app: App, spec: HandlerSpec, rival: Callable[[int], Awaitable[None]], done: Callable[[], Any]
) -> list[Event]:
    """Run the promoter whose every call is followed by `rival(call)` (a rival promoter's
    append landing between this one's read and its append) until `done()` holds."""
    seen: list[Event] = []
    decide = spec.handle

    async def handle(event: Event) -> Any:
        result = decide(event)
        if asyncio.iscoroutine(result):
            result = await result
        seen.append(event)
        await rival(len(seen))
        return result

    runtime = HandlerRuntime(replace(spec, handle=handle), app.store)
    stop = asyncio.Event()
    task = asyncio.create_task(run_until_stopped([runtime], stop))
    try:
        await wait_for(done)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return seen


async def test_a_promoter_that_loses_the_race_decides_again_on_the_winner(app: App) -> None:
    config = "square8_2p"
    await app.store.append_many([trained(config, "rival-m0"), trained(config, "late-m1")])

    async def rival(call: int) -> None:
        if call == 1:  # the rival promotes its own candidate first
            await app.store.append(decision(ModelPromoted, config, "rival-m0"))

    async def decided() -> bool:
        return any(e.model_id == "late-m1" for e in await decisions(app, config))

    await app.store.append(strong_evaluation(config, "late-m1"))
    calls = await run_racing(app, promoter_spec(app), rival, decided)

    assert len(calls) == 2  # decided, lost the append, re-read and decided again
    found = [(e.type, e.model_id) for e in await decisions(app, config)]
    assert found == [("model.promoted", "rival-m0"), ("model.rejected", "late-m1")]
    [late] = [e for e in await decisions(app, config) if e.model_id == "late-m1"]
    assert late.gate == "head_to_head" and "rival-m0" in late.reason  # judged against the winner


async def test_retry_exhaustion_naks_then_dead_letters_without_a_decision(app: App) -> None:
    config = "hex8_2p"
    await app.store.append_many([trained(config, "noisy-rival"), trained(config, "starved")])
    retries, deliveries = 3, 2

    async def rival(call: int) -> None:  # a rival decision lands after every read
        await app.store.append(decision(ModelRejected, config, "noisy-rival"))

    async def dead_lettered() -> bool:
        return bool(await app.store.read_all(LOG_STREAM, "loop.dlq.promoter"))

    spec = replace(promoter_spec(app), conflict_retries=retries, max_deliver=deliveries,
                   nak_delays=(0.2,))  # fmt: skip
    await app.store.append(strong_evaluation(config, "starved"))
    calls = await run_racing(app, spec, rival, dead_lettered)

    assert len(calls) == retries * deliveries
    assert not [e for e in await decisions(app, config) if e.model_id == "starved"]
    [failed] = [s.event for s in await app.store.read_all(LOG_STREAM, "loop.dlq.promoter")]
    assert isinstance(failed, HandlerFailed)
    assert failed.error_type == "TransientError" and f"after {retries} tries" in failed.error
    assert failed.deliveries == deliveries and failed.input_event_id == calls[0].event_id
    info = await app.store.js.consumer_info(LOG_STREAM, spec.name)
    assert info.num_ack_pending == 0 and info.num_pending == 0
