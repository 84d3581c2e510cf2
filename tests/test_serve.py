"""`ringloop serve` as its own process on RingRift's AI-service contract, through a real HTTP
client: legal moves on RingRift-format states, 4xx that quote the problem, the model swapped
on promotion and rollback without a restart, and a tournament seat played over HTTP."""

from __future__ import annotations

import asyncio
import io
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import torch

from engine import GameConfig, GameState
from engine.encoding import network_spec
from engine.move import Move
from engine.network import build_network, save_checkpoint
from engine.serialize import match_move, move_from_json, state_from_json, state_to_json
from events import ModelPromoted, ModelRegistered, ModelRolledBack
from handlers.models import put_checkpoint
from handlers.service_player import parse_service_url
from ops.app import App
from ops.settings import Settings
from ops.tournament import run_tournament
from tests.conftest import repo_root

TS_EXTRAS = {  # fields RingRift's TS GameState carries that the engine does not need
    "id": "game-1",
    "spectators": [],
    "timeControl": {"initialTime": 600, "increment": 0, "type": "blitz"},
    "createdAt": "2026-12-01T10:00:00.000Z",
    "lastMoveAt": "2026-12-01T10:01:00.000Z",
    "isRated": False,
}


def ringrift_state(config: str, random_moves: int, seed: int = 0) -> dict[str, Any]:
    """A RingRift-format GameState after some random moves (camelCase, Maps as objects)."""
    state = GameState.initial(GameConfig.parse(config))
    rng = random.Random(seed)
    for _ in range(random_moves):
        if state.is_over:
            break
        state.apply(rng.choice(state.legal_moves()))
    data = state_to_json(state)
    data.pop("ringloop")  # RingRift sends none of ringloop's own bookkeeping
    return {**data, **TS_EXTRAS, "maxPlayers": state.num_players}


def assert_legal(game_state: dict[str, Any], response: dict[str, Any]) -> Move:
    state = state_from_json(game_state)
    move = match_move(state, move_from_json(response["move"], state.geometry))
    assert move in state.legal_moves()
    return move


@pytest.fixture(scope="module")
def service(settings: Settings, app: App) -> Iterator[str]:
    """A `ringloop serve --port 0` process on the module's NATS; yields its base URL."""
    command = [sys.executable, "-m", "ops", "serve", "--port", "0", "--nats",
               str(settings.nats.url), "--state-dir", str(settings.state_dir)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    process = subprocess.Popen(command, cwd=repo_root(), env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "listening on http://" in line, line + process.stderr.read()
    url = line.split("listening on ")[1].split()[0]
    yield url
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(30) == 0, rest
    assert f"stopped listening on {url}" in rest


@pytest.fixture(scope="module")
def client(service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=60) as http:
        yield http


def test_health_and_ladder_moves_on_ringrift_states(client: httpx.Client) -> None:
    assert client.get("/health").json()["status"] == "healthy"
    for config, plies in [
        ("square8_2p", 0),
        ("square8_2p", 30),
        ("hex8_3p", 25),
        ("square8_4p", 50),
    ]:
        game_state = ringrift_state(config, plies, seed=plies)
        player = game_state["currentPlayer"]
        for difficulty, ai_type in [(1, "random"), (2, "heuristic"), (3, "mcts")]:
            body = {"game_state": game_state, "player_number": player, "difficulty": difficulty}
            response = client.post("/ai/move", json=body)
            assert response.status_code == 200, response.text
            data = response.json()
            assert_legal(game_state, data)
            assert data["ai_type"] == ai_type and data["difficulty"] == difficulty
            assert data["model_id"] is None and data["config"] == config
            assert -1.0 <= data["evaluation"] <= 1.0 and data["thinking_time_ms"] >= 0


def test_a_seed_makes_the_move_reproducible_and_a_batch_answers_each(client: httpx.Client) -> None:
    game_state = ringrift_state("square8_2p", 12, seed=4)
    body = {"game_state": game_state, "player_number": game_state["currentPlayer"],
            "difficulty": 1, "seed": 7}  # fmt: skip
    first, second = (client.post("/ai/move", json=body).json()["move"] for _ in range(2))
    assert {k: v for k, v in first.items() if k not in ("id", "timestamp", "thinkTime")} == {
        k: v for k, v in second.items() if k not in ("id", "timestamp", "thinkTime")
    }
    states = [ringrift_state("square8_2p", n, seed=n) for n in (3, 8, 21)]
    requests = [{"game_state": s, "player_number": s["currentPlayer"], "difficulty": 4}
                for s in states]  # fmt: skip
    response = client.post("/ai/moves_batch", json={"requests": requests})
    assert response.status_code == 200, response.text
    answers = response.json()["responses"]
    assert len(answers) == 3
    for game_state, answer in zip(states, answers, strict=True):
        assert_legal(game_state, answer)
        assert answer["simulations"] == 32


@pytest.mark.parametrize(
    ("change", "status", "quoted"),
    [
        (lambda b: {**b, "player_number": 5}, 400, "player_number 5 is out of range 1..2"),
        (lambda b: {**b, "player_number": 2}, 400, "it is player 1's turn"),
        (lambda b: {**b, "difficulty": 0}, 422, "difficulty: Input should be greater than or equal to 1 (got 0)"),
        (lambda b: {**b, "game_state": {"board": {"type": "octagon"}}}, 400, "unknown board type 'octagon'"),
        (lambda b: {**b, "game_state": {"players": []}}, 400, "game_state is malformed"),
        (lambda b: {**b, "game_state": {**b["game_state"], "gameStatus": "completed", "winner": 1}}, 400, "the game is over"),
        (lambda b: {"player_number": 1}, 422, "game_state: Field required"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_4xx_quoting_the_problem(
    client: httpx.Client, change: Any, status: int, quoted: str
) -> None:
    body = {"game_state": ringrift_state("square8_2p", 0), "player_number": 1}
    response = client.post("/ai/move", json=change(body))
    assert response.status_code == status
    assert quoted in response.json()["detail"]


def test_a_body_that_is_not_json_or_a_bad_batch_item_is_named(client: httpx.Client) -> None:
    response = client.post("/ai/move", content=b"{not json")
    assert response.status_code == 400 and "b'{not json'" in response.json()["detail"]
    good = {"game_state": ringrift_state("square8_2p", 0), "player_number": 1}
    response = client.post(
        "/ai/moves_batch", json={"requests": [good, {**good, "player_number": 2}]}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("requests[1]: it is player 1's turn")


async def _model(app: App, config: str, model_id: str, seed: int) -> None:
    spec = network_spec(GameConfig.parse(config), blocks=1, channels=8)
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    save_checkpoint(build_network(spec), spec, buffer)
    artifact = await put_checkpoint(app.store, f"{config}/{model_id}.pt", buffer.getvalue())
    await app.store.append(ModelRegistered(config=config, model_id=model_id, artifact=artifact,
                                           generation=1))  # fmt: skip


async def _serving(client: httpx.Client, config: str, model_id: str) -> None:
    async def poll() -> None:
        while (await asyncio.to_thread(client.get, "/health")).json()["models"].get(
            config
        ) != model_id:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), 30)


async def test_promotion_and_rollback_swap_the_model_without_a_restart(
    app: App, client: httpx.Client
) -> None:
    config = "hex8_2p"
    decision = {"gate": "test", "statistic": 1.0, "threshold": 0.5, "reason": "serve test"}
    await _model(app, config, "serve-m1", 1)
    await _model(app, config, "serve-m2", 2)
    game_state = ringrift_state(config, 10, seed=1)
    body = {"game_state": game_state, "player_number": game_state["currentPlayer"], "difficulty": 3}
    before = (await asyncio.to_thread(client.post, "/ai/move", json=body)).json()
    assert before["model_id"] is None  # no best yet: the ladder's heuristic search
    for model_id in ("serve-m1", "serve-m2"):
        await app.store.append(ModelPromoted(config=config, model_id=model_id, **decision))
        await _serving(client, config, model_id)
        answer = (await asyncio.to_thread(client.post, "/ai/move", json=body)).json()
        assert answer["model_id"] == model_id and answer["ai_type"] == "mcts"
        assert_legal(game_state, answer)
    await app.store.append(
        ModelRolledBack(
            config=config, model_id="serve-m2", restored_model_id="serve-m1", **decision
        )
    )
    await _serving(client, config, "serve-m1")
    answer = (await asyncio.to_thread(client.post, "/ai/move", json=body)).json()
    assert answer["model_id"] == "serve-m1"


async def test_a_tournament_seat_played_over_http_by_the_service(app: App, service: str) -> None:
    seat = f"{service}/?difficulty=2"
    outcome = await run_tournament(app, "square8_2p", [seat, "random"], games=2, local=True,
                                   timeout=240)  # fmt: skip
    participant = parse_service_url(seat).participant_id
    assert outcome.participants == [participant, "random"]
    assert len(outcome.matches) == 2
    for match in outcome.matches:
        assert {p.participant_id for p in match.participants} == {participant, "random"}


def test_service_urls_are_checked() -> None:
    assert parse_service_url("HTTP://Host:8001?difficulty=7").participant_id == (
        "http://host:8001/?difficulty=7"
    )
    assert parse_service_url("http://h:1/").difficulty == 5
    for bad, quoted in [("http://h:1/?difficulty=11", "difficulty must be 1-10"),
                        ("http://h:1/?level=3", "unknown parameter(s) ['level']"),
                        ("ftp://h/", "not a service URL")]:  # fmt: skip
        with pytest.raises(
            ValueError,
            match=quoted.replace("(", r"\(")
            .replace(")", r"\)")
            .replace("[", r"\[")
            .replace("]", r"\]"),
        ):
            parse_service_url(bad)
