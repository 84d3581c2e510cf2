"""AI players: the Player protocol, the random and heuristic baselines, MCTS over evaluators and network-guided search."""

from engine.players.base import GameResult, Player, play_game, rank_values, terminal_values
from engine.players.evaluators import (
    Evaluator,
    HeuristicEvaluator,
    HeuristicRootEvaluator,
    RolloutEvaluator,
)
from engine.players.heuristic import HeuristicPlayer, HeuristicWeights
from engine.players.mcts import MCTSPlayer, SearchSettings, SearchTree, simulate
from engine.players.neural import BatchedSelfplay, NetworkEvaluator, training_samples
from engine.players.random_player import RandomPlayer

__all__ = [
    "BatchedSelfplay",
    "Evaluator",
    "GameResult",
    "HeuristicEvaluator",
    "HeuristicRootEvaluator",
    "HeuristicPlayer",
    "HeuristicWeights",
    "MCTSPlayer",
    "NetworkEvaluator",
    "Player",
    "RandomPlayer",
    "RolloutEvaluator",
    "SearchSettings",
    "SearchTree",
    "play_game",
    "rank_values",
    "simulate",
    "terminal_values",
    "training_samples",
]
