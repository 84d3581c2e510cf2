"""The one game-playing path of every play stage: many games in lock-step (search leaves
batched across games), and the GameCompleted / MatchCompleted records of what was played.

Selfplay, gating and tournament games all go through `play_games`; the records they append
are built by `game_completed` and `game_events` (ids derived from the cause, so a redone
batch republishes the same events and JetStream drops the copies).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import GameConfig, GameState, Move
from engine.players.base import rank_values
from engine.players.heuristic import HeuristicWeights, player_scores
from engine.players.mcts import SearchTree, choose_move, expand_roots, simulate
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
    """One game in progress inside the lock-step driver."""

    def __init__(self, config: GameConfig, seats: list[Agent], seed: int) -> None:
        self.state = GameState.initial(config)
        self.record = PlayedGame(config, seats, seed)
        self.rng = random.Random(seed)
        self.noise_rng = np.random.default_rng(seed)
        self.started = time.perf_counter()

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


def play_games(
    config: GameConfig,
    seatings: Sequence[Sequence[Agent]],
    seeds: Sequence[int],
    *,
    max_moves: int,
    adjudication: str = "heuristic",
    stop: threading.Event | None = None,
) -> list[PlayedGame]:
    """Play one game per seating in lock-step; search leaves are evaluated in shared batches.

    A game still running after ``max_moves`` is adjudicated (``adjudicate``)."""
    tables = [_Table(config, list(s), seed) for s, seed in zip(seatings, seeds, strict=True)]
    for seats in seatings:
        if len(seats) != config.num_players:
            raise ValueError(f"{config.name} needs {config.num_players} seats, got {len(seats)}")
    while active := [t for t in tables if not _finished(t, max_moves)]:
        if stop is not None and stop.is_set():
            raise Cancelled(f"stopped with {len(active)} games of {config.name} unfinished")
        searching = _play_direct_moves(active)
        for group in _groups(searching).values():
            _search_step(group)
    return [_finish(t, adjudication) for t in tables]


def _finished(table: _Table, max_moves: int) -> bool:
    return table.state.is_over or len(table.record.moves) >= max_moves


def _play_direct_moves(tables: list[_Table]) -> list[_Table]:
    """Play the moves that need no search; return the tables whose mover must search."""
    searching = []
    for table in tables:
        agent, moves = table.agent, table.state.legal_moves()
        if agent.player is not None:
            table.play(agent.player.select_move(table.state, table.rng), None)
        elif len(moves) == 1:
            table.play(moves[0], None)
        else:
            searching.append(table)
    return searching


def _groups(tables: list[_Table]) -> dict[tuple[int, int], list[_Table]]:
    groups: dict[tuple[int, int], list[_Table]] = {}
    for table in tables:
        agent = table.agent
        assert agent.search is not None
        groups.setdefault((id(agent.evaluator), agent.search.simulations), []).append(table)
    return groups


def _search_step(tables: list[_Table]) -> None:
    """One move in each table: simulations in lock-step, one evaluator batch per simulation."""
    evaluator = tables[0].agent.evaluator
    assert evaluator is not None
    trees = [SearchTree(t.state, t.agent.search) for t in tables]  # type: ignore[arg-type]
    expand_roots(trees, evaluator)
    for table, tree in zip(tables, trees, strict=True):
        if table.agent.noise:
            tree.add_noise(table.noise_rng)
    for _ in range(tree.settings.simulations - 1):
        simulate(trees, evaluator)
    for table, tree in zip(tables, trees, strict=True):
        search = tree.settings
        visits = tree.visits()
        hot = table.state.move_count < search.temperature_moves
        move = choose_move(visits, search.temperature if hot else 0.0, table.rng, tree.values())
        table.play(move, visits, tree.root_value())


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
