"""PUCT Monte Carlo tree search over an Evaluator, with per-seat (max-n) backup, root noise and a temperature schedule.

Values are vectors, one entry per player (index 0 = player 1); each node chooses among its
children by the value of the player to act there, so the same code serves 2-4 players.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from engine.move import Move
from engine.players.base import terminal_values
from engine.players.evaluators import Evaluator
from engine.state import GameState

SEARCH_KINDS = ("puct", "gumbel")
VIRTUAL_LOSS = 1.0  # subtracted from the chooser's value of each node on a pending path
FORCED_MOVES_MAX = 64  # forced moves a walk plays past a leaf's move (a safety bound)

Leaf = tuple[list["Node"], GameState]


_NO_MOVES: list[Move] = []


class Node:
    """A search node. Once expanded it holds its state, its legal moves with their priors
    and, in arrays, the visit count and value sum (per player) of each move's child; a
    child Node is created when a walk first enters it (``slot``: its move's index in the
    parent). Keeping the state costs a position per node and saves replaying the path
    from the root on every walk: a leaf's state is its parent's plus one move."""

    __slots__ = (
        "slot", "player", "visit_count", "value_sum", "moves", "priors", "child_visits",
        "child_values", "children", "terminal", "state", "leaf_moves",
    )  # fmt: skip

    def __init__(self, slot: int = -1) -> None:
        self.slot = slot
        self.player = 0  # the player to act in this node's state (0 until expanded)
        self.visit_count = 0
        self.value_sum: np.ndarray | None = None
        self.moves: list[Move] = _NO_MOVES
        self.priors = np.zeros(0)
        self.child_visits = np.zeros(0)
        self.child_values = np.zeros((0, 0))
        self.children: dict[int, Node] = {}
        self.terminal: np.ndarray | None = None
        self.state: GameState | None = None  # set on expansion; never changed after
        # a leaf's legal moves, found by the walk that reached it (None once expanded)
        self.leaf_moves: list[Move] | None = None

    @property
    def expanded(self) -> bool:
        return bool(self.moves) or self.terminal is not None

    def mean_value(self, player: int) -> float:
        if self.visit_count == 0 or self.value_sum is None:
            return 0.0
        return float(self.value_sum[player - 1]) / self.visit_count

    def child(self, slot: int) -> Node:
        """The child of move ``slot`` (created on first use)."""
        found = self.children.get(slot)
        if found is None:
            found = self.children[slot] = Node(slot)
        return found

    def child_means(self, player: int) -> np.ndarray:
        """Each move's mean value for ``player`` (0 for an unvisited move)."""
        return self.child_values[:, player - 1] / np.maximum(self.child_visits, 1)


@dataclass(frozen=True)
class SearchSettings:
    """Search parameters, validated on construction."""

    simulations: int = 64
    c_puct: float = 1.5
    dirichlet_alpha: float = 0.3
    dirichlet_fraction: float = 0.25
    temperature: float = 1.0
    temperature_moves: int = 20  # moves (per game) played at ``temperature``; argmax after
    kind: str = "puct"  # the root search: "puct" or "gumbel" (engine.players.gumbel)
    leaves_per_tree: int = 1  # PUCT leaves one tree hands out per batch (virtual loss when > 1)
    gumbel_considered: int = 16  # Gumbel: root actions sampled by Gumbel-top-k
    gumbel_c_visit: float = 50.0  # Gumbel: sigma(q) = (c_visit + max visits) * c_scale * q
    gumbel_c_scale: float = 0.1
    skip_forced_moves: bool = True  # a walk plays past moves that leave no choice (descend)

    def __post_init__(self) -> None:
        if self.kind not in SEARCH_KINDS:
            raise ValueError(f"search kind must be one of {SEARCH_KINDS}, got {self.kind!r}")
        if self.leaves_per_tree < 1 or self.gumbel_considered < 1:
            raise ValueError(
                f"leaves_per_tree and gumbel_considered must be >= 1, got "
                f"{self.leaves_per_tree!r}, {self.gumbel_considered!r}"
            )
        if self.gumbel_c_visit < 0 or self.gumbel_c_scale <= 0:
            raise ValueError(
                f"need gumbel_c_visit >= 0 and gumbel_c_scale > 0, got "
                f"{self.gumbel_c_visit!r}, {self.gumbel_c_scale!r}"
            )
        if self.simulations < 1:
            raise ValueError(f"simulations must be >= 1, got {self.simulations!r}")
        if self.c_puct <= 0:
            raise ValueError(f"c_puct must be > 0, got {self.c_puct!r}")
        if not 0.0 <= self.dirichlet_fraction <= 1.0 or self.dirichlet_alpha <= 0:
            raise ValueError(
                f"need dirichlet_alpha > 0 and 0 <= dirichlet_fraction <= 1, got "
                f"{self.dirichlet_alpha!r}, {self.dirichlet_fraction!r}"
            )
        if self.temperature < 0 or self.temperature_moves < 0:
            raise ValueError(
                f"temperature and temperature_moves must be >= 0, got "
                f"{self.temperature!r}, {self.temperature_moves!r}"
            )


class SearchTree:
    """One game's search tree; leaves are handed out and evaluated by the caller (for batching)."""

    def __init__(self, state: GameState, settings: SearchSettings) -> None:
        self.state = state.copy()
        self.settings = settings
        self.root = Node()

    def select_leaf(self) -> tuple[list[Node], GameState]:
        """Walk down by PUCT to an unexpanded or terminal node; return the path and its state."""
        if not self.root.expanded:
            return [self.root], self.state.copy()
        return descend([self.root], self._select_slot, self.settings.skip_forced_moves)

    def select_leaves(self, count: int) -> list[Leaf]:
        """Up to ``count`` distinct leaves, each path under virtual loss until its backup
        (so the next walk is steered elsewhere); stops early at a leaf already handed out."""
        leaves: list[Leaf] = []
        taken: set[int] = set()
        for _ in range(count):
            path, state = self.select_leaf()
            if id(path[-1]) in taken:
                break
            taken.add(id(path[-1]))
            add_virtual_loss(path, +1)
            leaves.append((path, state))
        return leaves

    def _select_slot(self, node: Node) -> int:
        """argmax of Q + c_puct * sqrt(N) * P / (1 + n), Q for the node's player to act."""
        visits = node.child_visits
        scale = self.settings.c_puct * math.sqrt(node.visit_count)
        score = node.child_means(node.player) + scale * node.priors / (1.0 + visits)
        return int(np.argmax(score))

    def expand(
        self,
        path: list[Node],
        state: GameState,
        priors: np.ndarray,
        moves: list[Move] | None = None,
    ) -> None:
        """Expand the leaf with its legal moves (``moves``, when the caller has them) and
        their priors; a finished game's leaf keeps its terminal values."""
        leaf = path[-1]
        leaf.state = state
        found, leaf.leaf_moves = leaf.leaf_moves, None
        if state.is_over:
            leaf.terminal = terminal_values(state)
            return
        leaf.player = state.current_player
        if moves is None:
            moves = found if found is not None else state.legal_moves()
        leaf.moves = moves
        if len(priors) != len(leaf.moves):
            raise ValueError(f"{len(priors)} priors for {len(leaf.moves)} legal moves")
        leaf.priors = np.asarray(priors, dtype=np.float64)
        leaf.child_visits = np.zeros(len(leaf.moves))
        leaf.child_values = np.zeros((len(leaf.moves), state.num_players))

    def backup(self, path: list[Node], values: np.ndarray, *, virtual: bool = False) -> None:
        """Add one visit with ``values`` along the path (a terminal leaf's own values);
        ``virtual``: the path was handed out by `select_leaves`, its virtual loss is removed."""
        if virtual:
            add_virtual_loss(path, -1)
        if path[-1].terminal is not None:
            values = path[-1].terminal
        for parent, node in zip(path, path[1:], strict=False):
            parent.child_visits[node.slot] += 1
            parent.child_values[node.slot] += values
        for node in path:
            node.visit_count += 1
            node.value_sum = values.copy() if node.value_sum is None else node.value_sum + values

    def add_noise(self, rng: np.random.Generator) -> None:
        """Mix Dirichlet noise into the root priors (self-play exploration)."""
        root = self.root
        if len(root.moves) < 2 or self.settings.dirichlet_fraction == 0:
            return
        noise = rng.dirichlet([self.settings.dirichlet_alpha] * len(root.moves))
        fraction = self.settings.dirichlet_fraction
        root.priors = (1 - fraction) * root.priors + fraction * noise

    def set_root_priors(self, priors: np.ndarray) -> None:
        """Replace the expanded root's priors (aligned with its legal moves)."""
        if len(priors) != len(self.root.moves):
            raise ValueError(f"{len(priors)} root priors for {len(self.root.moves)} root moves")
        self.root.priors = np.asarray(priors, dtype=np.float64)

    def root_value(self) -> np.ndarray:
        """The root's mean value per player (index 0 = player 1) over all its visits."""
        root = self.root
        if root.value_sum is None or root.visit_count == 0:
            return np.zeros(self.state.num_players)
        return root.value_sum / root.visit_count

    def visits(self) -> dict[Move, int]:
        root = self.root
        return {m: int(n) for m, n in zip(root.moves, root.child_visits, strict=True)}

    def values(self) -> dict[Move, float]:
        """Each root move's mean value for the player to move at the root."""
        means = self.root.child_means(self.state.current_player)
        return {m: float(v) for m, v in zip(self.root.moves, means, strict=True)}


def descend(path: list[Node], select_slot: Any, skip_forced: bool = True) -> Leaf:
    """Walk on from ``path``'s expanded last node, choosing by ``select_slot(node)``, to an
    unexpanded node (its state: the parent's kept state plus the move and, ``skip_forced``,
    the forced moves after it, a fresh copy; its legal moves kept in ``leaf_moves``) or a
    terminal one (its kept state, which the caller must not change)."""
    node = path[-1]
    while node.terminal is None:
        slot = select_slot(node)
        child = node.child(slot)
        path.append(child)
        if not child.expanded:
            assert node.state is not None
            state = node.state.copy()
            state.apply_unchecked(node.moves[slot])
            child.leaf_moves = play_forced_moves(state) if skip_forced else None
            return path, state
        node = child
    assert node.state is not None
    return path, node.state


def play_forced_moves(state: GameState) -> list[Move]:
    """Play the moves ``state`` has no choice about (its only legal move: a bookkeeping step
    such as "no line to process", a capture chain's one continuation) until a choice or the
    end of the game; return the legal moves there (none: the game is over).

    So a tree's edge is a move and the forced moves after it: no simulation and no network
    evaluation goes to a position with one move (in selfplay on square8 ~38% of the
    evaluated leaves were such positions before). At most FORCED_MOVES_MAX in a row."""
    moves = state.legal_moves()
    for _ in range(FORCED_MOVES_MAX):
        if len(moves) != 1:
            break
        state.apply_unchecked(moves[0])
        moves = state.legal_moves()
    return moves


def add_virtual_loss(path: list[Node], sign: int) -> None:
    """Add (sign +1) or remove (-1) one pending visit that scores VIRTUAL_LOSS below par for
    the player choosing each step of the path."""
    for parent, node in zip(path, path[1:], strict=False):
        parent.child_visits[node.slot] += sign
        parent.child_values[node.slot, parent.player - 1] -= sign * VIRTUAL_LOSS
        node.visit_count += sign
    path[0].visit_count += sign


@runtime_checkable
class GivenMoves(Protocol):
    """An evaluator that can take the states' legal moves instead of generating them."""

    def evaluate_moves(
        self, states: Sequence[GameState], moves: Sequence[list[Move]]
    ) -> tuple[list[np.ndarray], np.ndarray]: ...


@runtime_checkable
class RootPriors(Protocol):
    """An evaluator that gives the search root its own priors (e.g. a one-ply lookahead)."""

    def root_priors(self, state: GameState) -> np.ndarray: ...


def expand_roots(trees: Sequence[SearchTree], evaluator: Evaluator) -> None:
    """The first simulation of every tree (expanding its root), then the root priors of an
    evaluator that offers them (RootPriors)."""
    simulate(trees, evaluator)
    if isinstance(evaluator, RootPriors):
        for tree in trees:
            if tree.root.moves:
                tree.set_root_priors(evaluator.root_priors(tree.state))


def simulate(trees: Sequence[SearchTree], evaluator: Evaluator) -> None:
    """One simulation in every tree, all leaves sent to the evaluator in one batch."""
    leaves = [tree.select_leaf() for tree in trees]
    pending = [i for i, (_, state) in enumerate(leaves) if not state.is_over]
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if pending:
        priors, values = evaluator.evaluate([leaves[i][1] for i in pending])
        results = {i: (priors[k], values[k]) for k, i in enumerate(pending)}
    for i, (tree, (path, state)) in enumerate(zip(trees, leaves, strict=True)):
        prior, value = results.get(i, (np.zeros(0), None))
        tree.expand(path, state, prior)
        tree.backup(path, value if value is not None else np.zeros(state.num_players))


# (priors, values, the legal moves the priors are aligned with); None: a terminal leaf
Evaluation = tuple[np.ndarray, np.ndarray, list[Move]] | None


class PuctSearch:
    """One move's PUCT search as a job a driver advances across many games: `leaves()`
    hands out the next leaves (the root alone first, then up to ``leaves_per_tree`` under
    virtual loss), `absorb()` takes their evaluations; `done` once the budget is spent.

    After the root is expanded its priors come from ``root_priors`` (when given), then
    Dirichlet noise is mixed in (when ``noise_rng`` is given), as in `expand_roots`."""

    def __init__(
        self,
        state: GameState,
        settings: SearchSettings,
        *,
        noise_rng: np.random.Generator | None = None,
        root_priors: RootPriors | None = None,
    ) -> None:
        self.tree = SearchTree(state, settings)
        self.remaining = settings.simulations
        self.noise_rng = noise_rng
        self.root_priors = root_priors

    @property
    def done(self) -> bool:
        return self.remaining <= 0

    def leaves(self) -> list[Leaf]:
        if not self.tree.root.expanded:
            return [self.tree.select_leaf()]
        return self.tree.select_leaves(min(self.remaining, self.tree.settings.leaves_per_tree))

    def absorb(self, leaves: Sequence[Leaf], evaluations: Sequence[Evaluation]) -> None:
        rooted = self.tree.root.expanded
        for (path, state), evaluation in zip(leaves, evaluations, strict=True):
            priors, values, moves = (
                evaluation if evaluation is not None else (np.zeros(0), None, None)
            )
            self.tree.expand(path, state, priors, moves)
            backed = values if values is not None else np.zeros(state.num_players)
            self.tree.backup(path, backed, virtual=rooted)
        self.remaining -= len(leaves)
        if not rooted and self.tree.root.moves:
            if self.root_priors is not None:
                self.tree.set_root_priors(self.root_priors.root_priors(self.tree.state))
            if self.noise_rng is not None:
                self.tree.add_noise(self.noise_rng)

    def choose(self, rng: random.Random) -> tuple[Move, dict[Move, int]]:
        """The move to play (visits, temperature for the opening moves) and the visits."""
        settings, visits = self.tree.settings, self.tree.visits()
        hot = self.tree.state.move_count < settings.temperature_moves
        temperature = settings.temperature if hot else 0.0
        return choose_move(visits, temperature, rng, self.tree.values()), visits


def run_search(job: PuctSearch | Any, evaluator: Evaluator) -> None:
    """Advance one search job (PuctSearch, GumbelSearch) to its end, one evaluator batch
    per round (the many-game driver is handlers.games.play_games)."""
    while not job.done:
        leaves = job.leaves()
        states = [state for _, state in leaves]
        evaluations = evaluate_leaves(evaluator, states, leaf_moves(leaves))
        job.absorb(leaves, evaluations)


class LeafBatch:
    """Leaf states split into the live ones (``pending``: their positions) with their legal
    moves, generated once (or given: ``moves``, None where not known); `placed` puts
    evaluations of the live ones back in leaf order (None for finished games)."""

    def __init__(
        self, states: Sequence[GameState], moves: Sequence[list[Move] | None] | None = None
    ) -> None:
        self.count = len(states)
        self.pending = [i for i, state in enumerate(states) if not state.is_over]
        self.live = [states[i] for i in self.pending]
        known = moves if moves is not None else [None] * self.count
        self.moves = [
            found if (found := known[i]) is not None else states[i].legal_moves()
            for i in self.pending
        ]

    def placed(self, evaluated: tuple[Sequence[np.ndarray], np.ndarray] | None) -> list[Evaluation]:
        out: list[Evaluation] = [None] * self.count
        if evaluated is not None:
            priors, values = evaluated
            for k, i in enumerate(self.pending):
                out[i] = (priors[k], values[k], self.moves[k])
        return out


def leaf_moves(leaves: Sequence[Leaf]) -> list[list[Move] | None]:
    """The legal moves the walks found for their leaves (None where not known: a root)."""
    return [path[-1].leaf_moves for path, _ in leaves]


def evaluate_leaves(
    evaluator: Evaluator,
    states: Sequence[GameState],
    moves: Sequence[list[Move] | None] | None = None,
) -> list[Evaluation]:
    """Evaluations of leaf states in one batch (None for finished games); the legal moves
    (``moves`` where known) are generated once, handed to an evaluator that takes them
    (GivenMoves)."""
    batch = LeafBatch(states, moves)
    if not batch.live:
        return batch.placed(None)
    if isinstance(evaluator, GivenMoves):
        return batch.placed(evaluator.evaluate_moves(batch.live, batch.moves))
    return batch.placed(evaluator.evaluate(batch.live))


@runtime_checkable
class Staged(Protocol):
    """An evaluator in three steps: encode (Python), forward (the network; may run in
    another thread), decode (priors over the given legal moves, values by player)."""

    def encode(self, states: Sequence[GameState]) -> Any: ...

    def timed_forward(self, planes: Any) -> tuple[np.ndarray, np.ndarray]: ...

    def decode(
        self,
        states: Sequence[GameState],
        moves: Sequence[list[Move]],
        logits: np.ndarray,
        values: np.ndarray,
    ) -> tuple[list[np.ndarray], np.ndarray]: ...


class StagedLeaves(LeafBatch):
    """`evaluate_leaves` of a Staged evaluator taken apart: built with the leaves' legal
    moves and planes, `forward()` runs the network (in any thread), `complete()` returns
    the evaluations (in the caller's)."""

    def __init__(
        self,
        evaluator: Staged,
        states: Sequence[GameState],
        moves: Sequence[list[Move] | None] | None = None,
    ) -> None:
        super().__init__(states, moves)
        self.evaluator = evaluator
        self.planes = evaluator.encode(self.live) if self.live else None

    def forward(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.evaluator.timed_forward(self.planes) if self.live else None

    def complete(self, outputs: tuple[np.ndarray, np.ndarray] | None) -> list[Evaluation]:
        if outputs is None:
            return self.placed(None)
        return self.placed(self.evaluator.decode(self.live, self.moves, *outputs))


def choose_move(
    visits: dict[Move, int],
    temperature: float,
    rng: random.Random,
    values: dict[Move, float] | None = None,
) -> Move:
    """Sample proportionally to visits^(1/T); T = 0 picks the most visited, ties broken by
    the higher mean value (when ``values`` are given), then at random."""
    moves = list(visits)
    counts = np.array([visits[m] for m in moves], dtype=np.float64)
    if temperature == 0 or counts.sum() == 0:
        top = [moves[i] for i in np.flatnonzero(counts == counts.max())]
        if values is not None and len(top) > 1:
            best = max(values.get(m, 0.0) for m in top)
            top = [m for m in top if values.get(m, 0.0) >= best - 1e-12]
        return top[rng.randrange(len(top))]
    weights = counts ** (1.0 / temperature)
    return rng.choices(moves, weights=weights.tolist())[0]


class MCTSPlayer:
    """PUCT search per move; records the root visit distribution in ``last_visits``."""

    def __init__(
        self,
        evaluator: Evaluator,
        settings: SearchSettings | None = None,
        *,
        noise: bool = False,
        name: str = "mcts",
    ) -> None:
        self.evaluator = evaluator
        self.settings = settings or SearchSettings()
        self.noise = noise
        self.name = name
        self.last_visits: dict[Move, int] | None = None

    def search(self, state: GameState, rng: random.Random) -> SearchTree:
        tree = SearchTree(state, self.settings)
        expand_roots([tree], self.evaluator)
        if self.noise:
            tree.add_noise(np.random.default_rng(rng.getrandbits(64)))
        for _ in range(self.settings.simulations - 1):
            simulate([tree], self.evaluator)
        return tree

    def select_move(self, state: GameState, rng: random.Random) -> Move:
        moves = state.legal_moves()
        if len(moves) == 1:
            self.last_visits = None
            return moves[0]
        if self.settings.kind == "gumbel":
            from engine.players.gumbel import GumbelSearch

            noise = np.random.default_rng(rng.getrandbits(64)) if self.noise else None
            root = self.evaluator if isinstance(self.evaluator, RootPriors) else None
            job = GumbelSearch(state, self.settings, noise_rng=noise, root_priors=root)
            run_search(job, self.evaluator)
            move, self.last_visits = job.choose(rng)
            return move
        tree = self.search(state, rng)
        self.last_visits = tree.visits()
        temperature = (
            self.settings.temperature if state.move_count < self.settings.temperature_moves else 0.0
        )
        return choose_move(self.last_visits, temperature, rng, tree.values())
