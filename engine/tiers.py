"""The difficulty ladder the evaluator and the CLI draw opponents from: D1 random, D2 heuristic, D3+ MCTS."""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.config import GameConfig
from engine.network import PolicyValueNet
from engine.players import (
    HeuristicEvaluator,
    HeuristicPlayer,
    MCTSPlayer,
    NetworkEvaluator,
    Player,
    RandomPlayer,
    SearchSettings,
)


@dataclass(frozen=True)
class Tier:
    name: str
    difficulty: int
    simulations: int  # 0: no search


TIERS: tuple[Tier, ...] = (
    Tier("random", 1, 0),
    Tier("heuristic", 2, 0),
    Tier("mcts-64", 3, 64),
    Tier("mcts-256", 4, 256),
    Tier("mcts-1024", 5, 1024),
)
_BY_NAME = {tier.name: tier for tier in TIERS} | {f"d{tier.difficulty}": tier for tier in TIERS}


def tier(name: str) -> Tier:
    """A tier by name ("random", "heuristic", "mcts-<N>") or difficulty ("d1".."d5")."""
    key = name.lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    prefix, _, count = key.partition("-")
    if prefix == "mcts" and count.isdigit() and int(count) > 0:
        return Tier(key, 3, int(count))
    known = ", ".join(t.name for t in TIERS)
    raise ValueError(f"unknown player tier {name!r}; expected one of {known}, mcts-<N> or d1-d5")


def make_player(
    name: str,
    config: GameConfig,
    *,
    rng: random.Random | None = None,
    network: PolicyValueNet | None = None,
) -> Player:
    """A player of the named tier; MCTS tiers use ``network`` when given, else the heuristic.

    ``rng`` is accepted for players that need construction-time randomness; moves draw
    from the generator passed to ``select_move``.
    """
    chosen = tier(name)
    if chosen.simulations == 0:
        return RandomPlayer() if chosen.name == "random" else HeuristicPlayer()
    if network is not None and network.spec.config != config.name:
        raise ValueError(f"network is for {network.spec.config!r}, not {config.name!r}")
    evaluator = NetworkEvaluator(network) if network is not None else HeuristicEvaluator()
    settings = SearchSettings(simulations=chosen.simulations, temperature_moves=0)
    return MCTSPlayer(evaluator, settings, name=chosen.name)
