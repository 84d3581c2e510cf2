"""The Player protocol every AI implements, and the game loop that pits players against each other."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from engine.config import GameConfig
from engine.move import Move
from engine.state import GameState

DEFAULT_MAX_MOVES = 2000


@runtime_checkable
class Player(Protocol):
    """Chooses a move for the player to act; randomness comes from ``rng``."""

    name: str

    def select_move(self, state: GameState, rng: random.Random) -> Move: ...


def rank_values(ranks: Sequence[int]) -> np.ndarray:
    """Per-player values in [-1, 1] from final ranks (1 = best): best 1, worst -1, linear between.

    Shared ranks share the average of the places they span; all-equal ranks give 0.
    """
    n = len(ranks)
    order = sorted(range(n), key=lambda i: ranks[i])
    place = np.empty(n)
    for i in range(n):
        tied = [j for j in range(n) if ranks[order[j]] == ranks[order[i]]]
        place[order[i]] = float(np.mean(tied))
    return 1.0 - 2.0 * place / (n - 1)


def terminal_values(state: GameState) -> np.ndarray:
    """Values per player (index 0 = player 1) of a finished game."""
    return rank_values(state.ranking())


@dataclass
class GameResult:
    """A finished (or move-capped) game: moves, visit distributions where searched, final ranks."""

    config: GameConfig
    moves: list[Move] = field(default_factory=list)
    visits: list[dict[Move, int] | None] = field(default_factory=list)
    ranking: list[int] = field(default_factory=list)
    finished: bool = False


def play_game(
    config: GameConfig,
    players: Sequence[Player],
    rng: random.Random,
    *,
    max_moves: int = DEFAULT_MAX_MOVES,
    state: GameState | None = None,
) -> GameResult:
    """Play one game, seat i+1 taken by ``players[i]``; capped games rank everyone equal."""
    if len(players) != config.num_players:
        raise ValueError(f"{config.name} needs {config.num_players} players, got {len(players)}")
    state = state.copy() if state is not None else GameState.initial(config)
    result = GameResult(config)
    while not state.is_over and len(result.moves) < max_moves:
        player = players[state.current_player - 1]
        move = player.select_move(state, rng)
        result.moves.append(move)
        result.visits.append(getattr(player, "last_visits", None))
        state.apply_unchecked(move)
    result.finished = state.is_over
    result.ranking = state.ranking() if state.is_over else [1] * config.num_players
    return result
