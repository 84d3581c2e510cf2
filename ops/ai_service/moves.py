"""Choosing the service's moves: the agent a config and difficulty get (the registry's current
best model under the difficulty's search budget, or the ladder tier when the config has no
model), and the moves of many positions searched in lock-step (one network batch per step)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nats.errors
import structlog

from handlers.agents import Agent, model_agent, search_settings, tier_agent
from handlers.models import ModelRef, best_model, load_network
from handlers.settings import LoopSettings
from ops.ai_service.contract import Position
from ops.ai_service.settings import Budget
from projections.eventstore import EventStore
from projections.registry import CONFIGS
from projections.tables import Tables

if TYPE_CHECKING:
    from engine.move import Move
    from engine.players.neural import NetworkEvaluator

log = structlog.get_logger(__name__)

KEPT_NETWORKS = 4  # networks held in memory (the current best of each config served lately)


@dataclass(frozen=True)
class Choice:
    move: Move
    evaluation: float  # the mover's value in [-1, 1]: the search root's, else the heuristic's
    thinking_ms: int
    ai_type: str
    model_id: str | None
    simulations: int


@dataclass
class Brain:
    """The agents of the service. The model of a config is read from the registry view at each
    request, so a ModelPromoted or ModelRolledBack folded into the view swaps it for the next
    move, with no restart; each network is loaded once (by sha256) and a few are kept."""

    store: EventStore
    registry: Callable[[], Tables]
    loop: LoopSettings
    cache_dir: Path
    networks: dict[str, NetworkEvaluator] = field(default_factory=dict)
    serving: dict[str, str | None] = field(default_factory=dict)  # config -> model id

    def best(self, config: str) -> ModelRef | None:
        model = best_model(self.registry(), config)
        return model if model is not None and model.artifact is not None else None

    def models(self, configs: Sequence[str]) -> dict[str, str | None]:
        """Each config's current best model id (None: ladder tiers): those given, and every
        config the registry has seen."""
        seen = [row["config"] for row in self.registry().rows(CONFIGS.name)]
        return {c: getattr(self.best(c), "model_id", None) for c in sorted({*configs, *seen})}

    async def agent(self, config: str, budget: Budget) -> Agent:
        if budget.player != "search":
            return tier_agent(budget.player, self.loop)
        model = self.best(config)
        model_id = model.model_id if model else None
        if self.serving.get(config, "") != model_id:
            log.info("serve_model_swapped", config=config, model_id=model_id)
            self.serving[config] = model_id
        if model is None:
            return tier_agent(f"mcts-{budget.simulations}", self.loop)
        try:
            evaluator = await self.network(model)
        except (ValueError, KeyError, nats.errors.Error) as exc:  # weights gone or corrupt
            log.warning("serve_model_unavailable", config=config, model_id=model_id, error=str(exc))
            return tier_agent(f"mcts-{budget.simulations}", self.loop)
        base = search_settings(self.loop, "evaluation")
        search = type(base)(**{**base.__dict__, "simulations": budget.simulations,
                               "temperature_moves": 0})  # fmt: skip
        sha = model.artifact.sha256 if model.artifact else None
        return model_agent(model.model_id, evaluator, search, sha256=sha)

    async def network(self, model: ModelRef) -> NetworkEvaluator:
        assert model.artifact is not None
        sha = model.artifact.sha256
        if sha not in self.networks:
            self.networks[sha], _ = await load_network(self.store, model, self.cache_dir)
            while len(self.networks) > KEPT_NETWORKS:
                self.networks.pop(next(iter(self.networks)))
        return self.networks[sha]


def request_rng(seed: int | None) -> random.Random:
    return random.Random(seed if seed is not None else int.from_bytes(os.urandom(8)))


def choose(positions: Sequence[Position], agents: Sequence[Agent]) -> list[Choice]:
    """One legal move per position; positions whose agents search share lock-step batches."""
    started = time.perf_counter()
    rngs = [request_rng(p.request.seed) for p in positions]
    picked: dict[int, tuple[Move, float]] = {}
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (pos, agent) in enumerate(zip(positions, agents, strict=True)):
        legal = pos.state.legal_moves()
        if agent.player is not None or len(legal) == 1:
            move = legal[0] if len(legal) == 1 else agent.player.select_move(pos.state, rngs[i])  # type: ignore[union-attr]
            picked[i] = (move, _heuristic_value(pos))
        else:
            assert agent.search is not None
            groups.setdefault((id(agent.evaluator), agent.search.simulations), []).append(i)
    for indices in groups.values():
        for i, result in zip(indices, _search([positions[i] for i in indices],
                                               agents[indices[0]], [rngs[i] for i in indices]),
                             strict=True):  # fmt: skip
            picked[i] = result
    thinking = int((time.perf_counter() - started) * 1000)
    return [_choice(picked[i], agents[i], thinking) for i in range(len(positions))]


def _choice(picked: tuple[Move, float], agent: Agent, thinking: int) -> Choice:
    move, value = picked
    searched = agent.search is not None
    ai_type = "mcts" if searched else agent.participant_id
    model_id = agent.participant_id if agent.model_sha256 is not None else None
    simulations = agent.search.simulations if agent.search is not None else 0
    return Choice(move, value, thinking, ai_type, model_id, simulations)


def _search(
    positions: Sequence[Position], agent: Agent, rngs: Sequence[random.Random]
) -> list[tuple[Move, float]]:
    from engine.players.mcts import SearchTree, choose_move, expand_roots, simulate

    assert agent.evaluator is not None and agent.search is not None
    trees = [SearchTree(p.state, agent.search) for p in positions]
    expand_roots(trees, agent.evaluator)
    for _ in range(agent.search.simulations - 1):
        simulate(trees, agent.evaluator)
    out = []
    for pos, tree, rng in zip(positions, trees, rngs, strict=True):
        move = choose_move(tree.visits(), 0.0, rng, tree.values())
        out.append((move, float(tree.root_value()[pos.request.player_number - 1])))
    return out


def _heuristic_value(pos: Position) -> float:
    from engine.players.heuristic import HeuristicWeights, heuristic_values

    return float(heuristic_values(pos.state, HeuristicWeights())[pos.request.player_number - 1])
