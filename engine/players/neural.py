"""Network-guided search: the network evaluator, the batched self-play driver and training samples from its games."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

import numpy as np
import torch

from engine.config import GameConfig
from engine.encoding import (
    batch_legal_priors,
    encode_state,
    encode_states,
    legal_policy_mask,
    visits_to_policy,
)
from engine.move import Move
from engine.network import InferenceGraph, PolicyValueNet, inference_graph
from engine.players.base import DEFAULT_MAX_MOVES, GameResult, rank_values
from engine.players.mcts import SearchSettings, SearchTree, choose_move, simulate
from engine.state import GameState
from engine.training import Sample


def relative_to_absolute(values: np.ndarray, current_player: int) -> np.ndarray:
    """Seat-relative values (index 0 = player to move) -> absolute (index 0 = player 1)."""
    n = len(values)
    return np.array([values[(p - current_player) % n] for p in range(1, n + 1)])


def absolute_to_relative(values: np.ndarray, current_player: int) -> np.ndarray:
    n = len(values)
    return np.array([values[(current_player - 1 + seat) % n] for seat in range(n)])


class PlanesEvaluator:
    """Evaluates a batch of states: encodes them here, runs `forward` on the planes (a local
    network, or the host's inference service: handlers.inference.SharedEvaluator), and builds
    the priors as the softmax over each state's legal slots.

    Keeps counters of what it did (positions, calls, seconds encoding, in the network and
    building priors) for `ringloop bench selfplay`."""

    num_players: int

    def __init__(self, num_players: int) -> None:
        self.num_players = num_players
        self.positions_evaluated = 0
        self.calls = 0
        self.seconds = {"encoding": 0.0, "network": 0.0, "priors": 0.0}

    def forward(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (logits, values) for float32 planes (N, C, H, W)."""
        raise NotImplementedError

    def evaluate(self, states: Sequence[GameState]) -> tuple[list[np.ndarray], np.ndarray]:
        return self.evaluate_moves(states, [s.legal_moves() for s in states])

    def evaluate_moves(
        self, states: Sequence[GameState], moves: Sequence[list[Move]]
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """`evaluate` with the states' legal moves given (engine.players.mcts.GivenMoves)."""
        if not states:
            return [], np.zeros((0, self.num_players))
        logits, values = self.timed_forward(self.encode(states))
        return self.decode(states, moves, logits, values)

    # The three steps apart (engine.players.mcts.Staged): the driver may run the forward
    # pass in a thread of its own while it walks other trees.
    def encode(self, states: Sequence[GameState]) -> np.ndarray:
        started = time.perf_counter()
        planes = encode_states(states)
        self.seconds["encoding"] += time.perf_counter() - started
        return planes

    def timed_forward(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        started = time.perf_counter()
        out = self.forward(planes)
        self.seconds["network"] += time.perf_counter() - started
        return out

    def decode(
        self,
        states: Sequence[GameState],
        moves: Sequence[list[Move]],
        logits: np.ndarray,
        values: np.ndarray,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Priors over each state's legal moves and values by player (index 0 = player 1)."""
        started = time.perf_counter()
        priors = batch_legal_priors(states[0].config, moves, logits)
        current = np.fromiter((s.current_player for s in states), dtype=np.int64, count=len(states))
        n = values.shape[1]
        # absolute[k, p - 1] = values[k, (p - current_k) % n]: seat-relative to by player
        seat = (np.arange(1, n + 1)[None, :] - current[:, None]) % n
        absolute = np.take_along_axis(np.asarray(values, dtype=np.float64), seat, axis=1)
        self.seconds["priors"] += time.perf_counter() - started
        self.positions_evaluated += len(states)
        self.calls += 1
        return priors, absolute


class NetworkEvaluator(PlanesEvaluator):
    """A PlanesEvaluator over a network held in this process, one forward pass per batch.

    The forward passes run the network's frozen inference graph (engine.network.
    inference_graph), built on the first pass from the weights the model has then: train
    a model after handing it to an evaluator and the evaluator keeps the old weights."""

    def __init__(self, model: PolicyValueNet, *, device: torch.device | str | None = None) -> None:
        super().__init__(model.spec.num_players)
        self.model = model.eval()
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device)
        self.graph: InferenceGraph | None = None
        self._graph_lock = threading.Lock()

    @torch.no_grad()
    def forward(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inputs = torch.from_numpy(planes).to(self.device)
        graph = self.graph or self._build_graph(inputs)
        logits_t, values_t = graph(inputs)
        return logits_t.float().cpu().numpy(), values_t.float().cpu().numpy()

    def _build_graph(self, example: torch.Tensor) -> InferenceGraph:
        with self._graph_lock:  # two threads' first passes build it once
            if self.graph is None:
                self.graph = inference_graph(self.model, example)
            return self.graph


class BatchedSelfplay:
    """Advances many games at once; every simulation step sends all pending leaves in one batch."""

    def __init__(
        self,
        evaluator,
        config: GameConfig,
        *,
        games: int,
        settings: SearchSettings | None = None,
        noise: bool = True,
        max_moves: int = DEFAULT_MAX_MOVES,
    ) -> None:
        if games < 1:
            raise ValueError(f"games must be >= 1, got {games!r}")
        self.evaluator = evaluator
        self.config = config
        self.games = games
        self.settings = settings or SearchSettings()
        self.noise = noise
        self.max_moves = max_moves

    def play(self, rng: random.Random) -> list[GameResult]:
        states = [GameState.initial(self.config) for _ in range(self.games)]
        results = [GameResult(self.config) for _ in range(self.games)]
        noise_rng = np.random.default_rng(rng.getrandbits(64))
        while True:
            active = [i for i, s in enumerate(states) if self._running(s, results[i])]
            if not active:
                break
            searched = [i for i in active if not self._play_forced(states[i], results[i])]
            if searched:
                self._search_and_move(searched, states, results, rng, noise_rng)
        for state, result in zip(states, results, strict=True):
            result.finished = state.is_over
            result.ranking = state.ranking() if state.is_over else [1] * self.config.num_players
        return results

    def _running(self, state: GameState, result: GameResult) -> bool:
        return not state.is_over and len(result.moves) < self.max_moves

    def _play_forced(self, state: GameState, result: GameResult) -> bool:
        moves = state.legal_moves()
        if len(moves) != 1:
            return False
        result.moves.append(moves[0])
        result.visits.append(None)
        state.apply_unchecked(moves[0])
        return True

    def _search_and_move(self, indices, states, results, rng, noise_rng) -> None:
        trees = [SearchTree(states[i], self.settings) for i in indices]
        simulate(trees, self.evaluator)
        if self.noise:
            for tree in trees:
                tree.add_noise(noise_rng)
        for _ in range(self.settings.simulations - 1):
            simulate(trees, self.evaluator)
        for i, tree in zip(indices, trees, strict=True):
            visits = tree.visits()
            early = states[i].move_count < self.settings.temperature_moves
            move = choose_move(visits, self.settings.temperature if early else 0.0, rng)
            results[i].moves.append(move)
            results[i].visits.append(visits)
            states[i].apply_unchecked(move)


def training_samples(result: GameResult) -> list[Sample]:
    """One sample per searched move: planes, the visit distribution, the final result per seat."""
    if len(result.ranking) != result.config.num_players:
        raise ValueError(f"game result has no ranking: {result.ranking!r}")
    final = rank_values(result.ranking)
    state = GameState.initial(result.config)
    samples = []
    for move, visits in zip(result.moves, result.visits, strict=True):
        if visits:
            policy = visits_to_policy(state, visits)
            samples.append(
                Sample.from_search(
                    encode_state(state),
                    policy,
                    absolute_to_relative(final, state.current_player),
                    legal_mask=legal_policy_mask(state),
                )
            )
        state.apply_unchecked(move)
    return samples
