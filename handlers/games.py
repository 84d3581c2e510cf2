"""The one game-playing path of every play stage: many games at once with continuous batching
(search leaves gathered across games into one evaluator batch per round, a finished game's
slot refilled at once), and the GameCompleted / MatchCompleted records of what was played.

Selfplay, gating and tournament games all go through `play_games`; the records they append
are built by `game_completed` and `game_events` (ids derived from the cause, so a redone
batch republishes the same events and JetStream drops the copies).
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import GameConfig, GameState, Move
from engine.players.base import rank_values
from engine.players.gumbel import GumbelSearch
from engine.players.heuristic import HeuristicWeights, player_scores
from engine.players.mcts import (
    Evaluation,
    Leaf,
    PuctSearch,
    RootPriors,
    Staged,
    StagedLeaves,
    evaluate_leaves,
    leaf_moves,
)
from engine.players.neural import absolute_to_relative
from events import (
    Event,
    GameCompleted,
    MatchCompleted,
    MatchParticipant,
    Producer,
    SeatAssignment,
    derive_event_id,
)
from handlers.agents import Agent

RootSearch = PuctSearch | GumbelSearch


@dataclass
class PlayedGame:
    """A finished game: seats in order, moves, per-move visits and root values (None: not
    searched)."""

    config: GameConfig
    seats: list[Agent]
    seed: int
    moves: list[Move] = field(default_factory=list)
    visits: list[dict[Move, int] | None] = field(default_factory=list)
    root_values: list[np.ndarray | None] = field(default_factory=list)
    ranking: list[int] = field(default_factory=list)
    winner: int | None = None
    termination: str = "normal"
    duration_s: float = 0.0


class _Table:
    """One game in progress inside the driver; ``job`` is the search of the move to play."""

    def __init__(self, config: GameConfig, seats: list[Agent], seed: int, index: int = 0) -> None:
        self.state = GameState.initial(config)
        self.record = PlayedGame(config, seats, seed)
        self.index = index
        self.rng = random.Random(seed)
        self.noise_rng = np.random.default_rng(seed)
        self.started = time.perf_counter()
        self.job: RootSearch | None = None

    @property
    def agent(self) -> Agent:
        return self.record.seats[self.state.current_player - 1]

    def play(
        self, move: Move, visits: dict[Move, int] | None, root_value: np.ndarray | None = None
    ) -> None:
        self.record.moves.append(move)
        self.record.visits.append(visits)
        self.record.root_values.append(root_value)
        self.state.apply_unchecked(move)


class Cancelled(RuntimeError):
    """The game batch was abandoned because its worker is stopping."""


@dataclass
class PlayStats:
    """What a `play_games` call spent its time on (filled when passed in; the bench reads it)."""

    seconds: dict[str, float] = field(
        default_factory=lambda: {"select": 0.0, "evaluate": 0.0, "backup": 0.0, "engine": 0.0}
    )
    batches: int = 0
    positions: int = 0

    def add(self, part: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[part] += now - since
        return now


def play_games(
    config: GameConfig,
    seatings: Sequence[Sequence[Agent]],
    seeds: Sequence[int],
    *,
    max_moves: int,
    adjudication: str = "heuristic",
    stop: threading.Event | None = None,
    parallel: int | None = None,
    stats: PlayStats | None = None,
    pipeline: float | None = None,
) -> list[PlayedGame]:
    """Play one game per seating, ``parallel`` at a time (all by default) with continuous
    batching: a finished game's slot takes the next seating at once, and every round sends
    the pending search leaves of all running games to each evaluator in one batch.

    A game still running after ``max_moves`` is adjudicated (``adjudicate``). Each game's
    moves depend only on its seed and its agents, so a batch is deterministic for its seeds.
    ``pipeline`` (a thread switch interval in seconds): the games run in two lanes, each
    one's forward passes overlapping the other's search (`_Lane`); None: one lane."""
    for seats in seatings:
        if len(seats) != config.num_players:
            raise ValueError(f"{config.name} needs {config.num_players} seats, got {len(seats)}")
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel!r}")
    stats = stats if stats is not None else PlayStats()
    queue = deque(enumerate(zip(seatings, seeds, strict=True)))
    width = len(seatings) if parallel is None else parallel
    lanes = [_Lane(w) for w in _lane_widths(width, 1 if pipeline is None else 2)]
    played: dict[int, PlayedGame] = {}
    with (
        _switching(pipeline),
        ThreadPoolExecutor(1, "evaluate") if pipeline else nullcontext() as pool,
    ):
        while queue or any(lane.tables for lane in lanes):
            for lane in lanes:
                if stop is not None and stop.is_set():
                    unfinished = len(queue) + sum(len(lane.tables) for lane in lanes)
                    raise Cancelled(f"stopped with {unfinished} games of {config.name} unfinished")
                lane.finish(stats)
                lane.tables = _refill(
                    config, lane.tables, queue, lane.width, max_moves, adjudication, played, stats
                )
                if lane.tables:
                    lane.start(stats, pool)
    return [played[i] for i in range(len(seatings))]


class _SwitchInterval:
    """The interpreter's thread switch interval, shared by every pipelined driver of the
    process: while any runs it is the smallest any asked for; the last to leave restores the
    value from before the first came (overlapping drivers do not restore each other's)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.asked: list[float] = []
        self.original = sys.getswitchinterval()

    @contextmanager
    def held(self, interval_s: float | None) -> Iterator[None]:
        """``interval_s`` (or less, if another driver asked less) meanwhile; None: kept."""
        if interval_s is None:
            yield
            return
        with self.lock:
            if not self.asked:
                self.original = sys.getswitchinterval()
            self.asked.append(interval_s)
            sys.setswitchinterval(min(self.asked))
        try:
            yield
        finally:
            with self.lock:
                self.asked.remove(interval_s)
                sys.setswitchinterval(min(self.asked) if self.asked else self.original)


_switch_interval = _SwitchInterval()
_switching = _switch_interval.held


def _lane_widths(width: int, lanes: int) -> list[int]:
    """``width`` games split over ``lanes`` (each at least one game)."""
    lanes = max(1, min(lanes, width))
    return [width // lanes + (i < width % lanes) for i in range(lanes)]


class _Lane:
    """A share of the running games and the round of leaves it has out for evaluation.

    With one lane a round is evaluated at once in `start`. With two (``pipeline``) `start`
    builds the legal moves and planes of the lane's leaves and hands the network's forward
    pass to the pool's one thread, and `finish` (after the other lane's trees were walked
    meanwhile) builds the priors and absorbs them: the forward pass, which releases the
    GIL, overlaps the search's Python work. Forward passes run one at a time in submission
    order, so each game's moves still depend only on its seed and its agents."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.tables: list[_Table] = []
        self.leaves: list[tuple[_Table, list[Leaf]]] = []
        self.results: dict[tuple[int, int], Evaluation] = {}
        # (leaf keys, their staged evaluation, its forward pass) of the round out; None: none
        self.staged: list[tuple[list[tuple[int, int]], StagedLeaves, Future[Any]]] | None = None

    def start(self, stats: PlayStats, pool: ThreadPoolExecutor | None) -> None:
        started = time.perf_counter()
        self.leaves = [(t, t.job.leaves()) for t in self.tables if t.job is not None]
        stats.add("select", started)
        batches = _batches(self.leaves, stats)
        started = time.perf_counter()
        if pool is None:
            results = _evaluate(batches)
            stats.add("evaluate", started)
            _absorb(self.leaves, results, stats)
            return
        self.results, self.staged = {}, []
        for batch in batches:
            if isinstance(batch.evaluator, Staged):  # legal moves and planes here, forward there
                staged = StagedLeaves(batch.evaluator, batch.states, batch.moves)
                self.staged.append((batch.members, staged, pool.submit(staged.forward)))
            else:
                evaluations = evaluate_leaves(batch.evaluator, batch.states, batch.moves)
                self.results.update(zip(batch.members, evaluations, strict=True))
        stats.add("evaluate", started)

    def finish(self, stats: PlayStats) -> None:
        """Absorb the lane's round out for evaluation (none: nothing to do)."""
        if self.staged is None:
            return
        started = time.perf_counter()
        for members, staged, future in self.staged:
            self.results.update(zip(members, staged.complete(future.result()), strict=True))
        self.staged = None
        stats.add("evaluate", started)
        _absorb(self.leaves, self.results, stats)


def _refill(
    config: GameConfig,
    tables: list[_Table],
    queue: deque[tuple[int, tuple[Sequence[Agent], int]]],
    width: int,
    max_moves: int,
    adjudication: str,
    played: dict[int, PlayedGame],
    stats: PlayStats,
) -> list[_Table]:
    """Play the moves that need no search; finished games leave, queued ones take their slots."""
    running: list[_Table] = []
    pending = list(tables)
    while pending or (queue and len(running) < width):
        while queue and len(running) + len(pending) < width:
            index, (seats, seed) = queue.popleft()
            pending.append(_Table(config, list(seats), seed, index))
        started = time.perf_counter()
        for table in pending:
            if table.job is None:
                _play_direct_moves_until_search(table, max_moves)
            if _finished(table, max_moves):
                played[table.index] = _finish(table, adjudication)
            else:
                running.append(table)
        stats.add("engine", started)
        pending = []
    return running


def _finished(table: _Table, max_moves: int) -> bool:
    return table.state.is_over or len(table.record.moves) >= max_moves


def _play_direct_moves_until_search(table: _Table, max_moves: int) -> None:
    """Play moves that need no search (a direct player's, a single legal move) until the
    mover must search or the game is over; then start that search."""
    while not _finished(table, max_moves):
        agent, moves = table.agent, table.state.legal_moves()
        if agent.player is not None:
            table.play(agent.player.select_move(table.state, table.rng), None)
        elif len(moves) == 1:
            table.play(moves[0], None)
        else:
            table.job = _new_search(table)
            return


def _new_search(table: _Table) -> RootSearch:
    agent = table.agent
    assert agent.search is not None and agent.evaluator is not None
    kind = GumbelSearch if agent.search.kind == "gumbel" else PuctSearch
    root_priors = agent.evaluator if isinstance(agent.evaluator, RootPriors) else None
    noise_rng = table.noise_rng if agent.noise else None
    return kind(table.state, agent.search, noise_rng=noise_rng, root_priors=root_priors)


@dataclass
class _Batch:
    """One evaluator's leaves of a round: their states, the legal moves their walks found
    (None: not known) and where each came from ((k, j): leaf j of the round's table k)."""

    evaluator: Any
    states: list[GameState]
    moves: list[list[Move] | None]
    members: list[tuple[int, int]]


def _batches(leaves: list[tuple[_Table, list[Leaf]]], stats: PlayStats) -> list[_Batch]:
    """The round's leaves grouped by evaluator: one batch each."""
    groups: dict[int, list[tuple[int, int]]] = {}
    for k, (table, found) in enumerate(leaves):
        for j in range(len(found)):
            groups.setdefault(id(table.agent.evaluator), []).append((k, j))
    out: list[_Batch] = []
    for members in groups.values():
        evaluator = leaves[members[0][0]][0].agent.evaluator
        assert evaluator is not None
        chosen = [leaves[k][1][j] for k, j in members]
        states = [state for _, state in chosen]
        out.append(_Batch(evaluator, states, leaf_moves(chosen), members))
        stats.batches += 1
        stats.positions += sum(not state.is_over for state in states)
    return out


def _evaluate(batches: list[_Batch]) -> dict[tuple[int, int], Evaluation]:
    results: dict[tuple[int, int], Evaluation] = {}
    for batch in batches:
        evaluations = evaluate_leaves(batch.evaluator, batch.states, batch.moves)
        results.update(zip(batch.members, evaluations, strict=True))
    return results


def _absorb(
    leaves: list[tuple[_Table, list[Leaf]]],
    results: dict[tuple[int, int], Evaluation],
    stats: PlayStats,
) -> None:
    """The searches take their evaluations; finished searches play their move."""
    started = time.perf_counter()
    for k, (table, found) in enumerate(leaves):
        assert table.job is not None
        table.job.absorb(found, [results.get((k, j)) for j in range(len(found))])
    started = stats.add("backup", started)
    for table, _ in leaves:
        assert table.job is not None
        if table.job.done:
            move, visits = table.job.choose(table.rng)
            table.play(move, visits, table.job.tree.root_value())
            table.job = None
    stats.add("engine", started)


def _finish(table: _Table, adjudication: str) -> PlayedGame:
    record, state = table.record, table.state
    if state.is_over:
        record.ranking = state.ranking()
        record.winner = state.winner
        record.termination = state.victory_reason or "normal"
    else:
        record.ranking = adjudicate(state, adjudication)
        record.termination = f"max_moves_{adjudication}"
        firsts = [seat for seat, rank in enumerate(record.ranking, 1) if rank == 1]
        record.winner = firsts[0] if len(firsts) == 1 else None
    record.duration_s = time.perf_counter() - table.started
    return record


def adjudicate(state: GameState, how: str) -> list[int]:
    """Ranks of an unfinished (capped) game: by heuristic score, or everyone equal."""
    if how == "draw":
        return [1] * state.num_players
    scores = player_scores(state, HeuristicWeights())
    return [1 + int((scores > score + 1e-9).sum()) for score in scores]


def rotated_seatings(participants: Sequence[Agent], games: int) -> list[list[Agent]]:
    """Seatings for ``games`` games rotating every participant through every seat."""
    n = len(participants)
    return [[participants[(g + s) % n] for s in range(n)] for g in range(games)]


def seat_values(ranking: Sequence[int], current_player: int) -> np.ndarray:
    """Value targets in seat order relative to ``current_player`` (the network's frame)."""
    return absolute_to_relative(rank_values(ranking), current_player).astype(np.float32)


# ---------------------------------------------------------------- records


def game_completed(
    played: PlayedGame,
    *,
    purpose: str,
    game_id: str,
    producer: Producer,
    model_id: str | None = None,
    generation: int = 0,
    **envelope: Any,
) -> GameCompleted:
    """The GameCompleted record of a played game (moves and visits in compact notation).

    ``envelope`` may set event_id, causation_id and correlation_id (derived ids).
    """
    searched = any(v is not None for v in played.visits)
    return GameCompleted(
        **envelope,
        producer=producer,
        config=played.config.name,
        purpose=purpose,  # type: ignore[arg-type]
        game_id=game_id,
        seats=[
            SeatAssignment(seat=i, participant_id=a.participant_id, model_sha256=a.model_sha256)
            for i, a in enumerate(played.seats, 1)
        ],
        winner=played.winner,
        ranking=played.ranking,
        termination=played.termination,
        moves=[m.to_notation() for m in played.moves],
        visits=[
            {m.to_notation(): c for m, c in v.items() if c > 0} if v is not None else {}
            for v in played.visits
        ]
        if searched
        else None,
        root_values=[
            [round(float(x), 4) for x in v] if v is not None else None for v in played.root_values
        ]
        if searched
        else None,
        model_id=model_id,
        generation=generation,
        seed=played.seed,
        duration_s=round(played.duration_s, 4),
    )


def pair_score(game: PlayedGame, candidate: str, opponent: str) -> float:
    """1 if the candidate finished above the opponent, 0.5 level, 0 below."""
    ranks = {a.participant_id: r for a, r in zip(game.seats, game.ranking, strict=True)}
    if ranks[candidate] == ranks[opponent]:
        return 0.5
    return 1.0 if ranks[candidate] < ranks[opponent] else 0.0


def seed_for(*parts: object) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:15], 16)


def match_completed(
    cause: Event,
    record: GameCompleted,
    played: PlayedGame,
    *,
    match_id: str,
    context: str,
    context_id: str,
    producer: Producer,
    tag: str,
) -> MatchCompleted:
    """The rated result of one game; model participants carry sha256 and config."""
    participants = [
        MatchParticipant(
            participant_id=agent.participant_id,
            rank=rank,
            seat=seat,
            model_sha256=agent.model_sha256,
            config=record.config if agent.model_sha256 else None,
        )
        for seat, (agent, rank) in enumerate(zip(played.seats, played.ranking, strict=True), 1)
    ]
    return cause.caused(
        MatchCompleted,
        tag,
        producer=producer,
        config=record.config,
        match_id=match_id,
        participants=participants,
        game_id=record.game_id,
        game_subject=record.subject(),
        context=context,
        context_id=context_id,
    )


def game_events(
    cause: Event,
    played: Sequence[PlayedGame],
    *,
    prefix: str,
    first_index: int,
    context: str,
    context_id: str,
    producer: Producer,
    generation: int = 0,
) -> list[Event]:
    """GameCompleted (purpose eval) then MatchCompleted for each game, ids derived from ``cause``."""
    out: list[Event] = []
    for index, game in enumerate(played, first_index):
        game_id = f"{prefix}:{index}"
        record = game_completed(
            game,
            purpose="eval",
            game_id=game_id,
            producer=producer,
            generation=generation,
            event_id=derive_event_id(cause.event_id, f"game:{game_id}"),
            causation_id=cause.event_id,
            correlation_id=cause.correlation_id or cause.event_id,
        )
        match = match_completed(
            cause,
            record,
            game,
            match_id=game_id,
            context=context,
            context_id=context_id,
            producer=producer,
            tag=f"match:{game_id}",
        )
        out += [record, match]
    return out
