"""A short loop history as real events: games played by the engine (square and hex boards),
a training with its losses, rated matches, a gate's verdict, a promotion, a dead letter.

The dashboard and metrics tests append it and read it back through the read models.
"""

from __future__ import annotations

import hashlib
import random

from engine.config import GameConfig
from engine.state import GameState
from events import (
    EloUpdated,
    EvaluationCompleted,
    Event,
    GameCompleted,
    HandlerFailed,
    MatchCompleted,
    ModelPromoted,
    RatingChange,
    TrainingCompleted,
    TrainingRequested,
)
from events.catalogue import ArtifactRef, EpochLoss, GameRange, OpponentResult, SeatAssignment
from events.keys import rating_key

CONFIG = "square8_2p"
HEX_CONFIG = "hex8_2p"
MODEL = "square8_2p-g1-story"
SHA = hashlib.sha256(b"story weights").hexdigest()


def random_game(config: str, seed: int, *, max_moves: int = 40) -> GameCompleted:
    """A legal game of random moves (stopped after `max_moves`), as selfplay records it."""
    rng = random.Random(seed)
    state = GameState.initial(GameConfig.parse(config))
    moves = []
    while not state.is_over and len(moves) < max_moves:
        move = rng.choice(state.legal_moves())
        state.apply(move)
        moves.append(move.to_notation())
    ranking = state.ranking() if state.is_over else [1, 1]
    return GameCompleted(
        config=config, purpose="selfplay", game_id=f"story-{config}-{seed}",
        seats=[SeatAssignment(seat=1, participant_id="random"),
               SeatAssignment(seat=2, participant_id="random")],
        winner=state.winner, ranking=ranking,
        termination="normal" if state.is_over else "max_moves_draw", moves=moves, seed=seed,
    )  # fmt: skip


def training() -> list[Event]:
    games = GameRange(subject="games.square8.2p.selfplay", first_seq=1, last_seq=3, count=3)
    requested = TrainingRequested(config=CONFIG, training_id="t-story", games=games, generation=1)
    completed = TrainingCompleted(
        config=CONFIG, training_id="t-story", model_id=MODEL, generation=1,
        artifact=ArtifactRef(name=MODEL, sha256=SHA, size=1234), data=games,
        losses=[EpochLoss(epoch=1, policy_loss=2.7, value_loss=0.9),
                EpochLoss(epoch=2, policy_loss=2.4, value_loss=0.7)],
        samples=600, samples_per_s=321.5, duration_s=1.9, causation_id=requested.event_id,
    )  # fmt: skip
    return [requested, completed]


def rated_matches(count: int = 6) -> list[Event]:
    """The story model beats random `count` times, each match rated (Elo from 1500 up)."""
    key = rating_key(MODEL, SHA)
    out: list[Event] = []
    elo = 1500.0
    for i in range(count):
        match = MatchCompleted(config=CONFIG, match_id=f"story-m{i}", context_id="gate-story",
                               participants=[{"participant_id": MODEL, "rank": 1, "model_sha256": SHA},
                                             {"participant_id": "random", "rank": 2}])  # fmt: skip
        changes = [RatingChange(participant_id=key, before=elo, after=elo + 4, rank=1),
                   RatingChange(participant_id="random", before=400, after=400, rank=2)]  # fmt: skip
        elo += 4
        out += [match, EloUpdated(config=CONFIG, match_id=match.match_id, changes=changes,
                                  k_factor=32, causation_id=match.event_id)]  # fmt: skip
    return out


def verdict() -> list[Event]:
    evaluation = EvaluationCompleted(
        config=CONFIG, evaluation_id="gate-story", candidate=MODEL,
        results=[OpponentResult(opponent="random", games=6, wins=6, losses=0, draws=0, score=1.0)],
    )  # fmt: skip
    promoted = ModelPromoted(
        config=CONFIG, model_id=MODEL, gate="floors", statistic=1.0, threshold=0.5,
        reason="first model of the config; floors passed: random 1.000 >= 0.500 — the whole "
        "reason, however long it is, reaches the page and is never cut at 110 characters",
        evaluation_id="gate-story", generation=1, causation_id=evaluation.event_id,
    )  # fmt: skip
    return [evaluation, promoted]


def dead_letter() -> HandlerFailed:
    return HandlerFailed(
        handler="elo-rater", error_type="EventDecodeError", error="cannot decode event 'x'",
        input_stream="RINGLOOP_LOG", input_seq=1, input_subject="loop.match.completed.square8_2p",
    )  # fmt: skip
