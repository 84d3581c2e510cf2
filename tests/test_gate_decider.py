"""The gate decider (handlers.gating.on_match_completed) over the gating read model, folded from
events: an SPRT that decides stops the gate early, a gate that never decides runs to its game
cap, a game counted twice or arriving after the decision changes nothing; and the promoter's
rejections by Wilson bound and head to head on what the gate reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from events import (
    EvaluationCompleted,
    EvaluationStarted,
    Event,
    MatchCompleted,
    Producer,
)
from handlers.gating import HeadToHead, on_match_completed
from handlers.promoter import judge
from handlers.runtime import Append
from handlers.settings import LoopSettings
from projections.base import fold
from projections.eventstore import StoredEvent
from projections.gating import GatingProjection, gating_match_id, is_open, tallies

CONFIG = "square8_2p"
GATE = "eval-decider"
SPRT = {"elo0": 0.0, "elo1": 100.0, "alpha": 0.05, "beta": 0.05}
PRODUCER = Producer(name="gating", host="test", pid=1)


def settings(**evaluation: Any) -> LoopSettings:
    return LoopSettings.validated({"evaluation": {"sprt": SPRT, **evaluation}})


class Log:
    """An in-memory log: events with stream positions, folded into the gating view on demand."""

    def __init__(self) -> None:
        self.stored: list[StoredEvent] = []

    def append(self, *events: Event) -> None:
        for event in events:
            seq = len(self.stored) + 1
            self.stored.append(
                StoredEvent("RINGLOOP_LOG", seq, event.subject(), datetime.now(UTC), event)
            )

    def view(self) -> Any:
        return fold(GatingProjection(), self.stored)


def started(games: dict[str, int]) -> EvaluationStarted:
    return EvaluationStarted(config=CONFIG, evaluation_id=GATE, candidate="cand",
                             opponents=list(games), games=games)  # fmt: skip


def game(index: int, opponent: str, candidate_wins: bool | None) -> MatchCompleted:
    """Gate game `index` against `opponent`: the candidate wins, loses or (None) draws."""
    ranks = (1, 2) if candidate_wins else (2, 1) if candidate_wins is False else (1, 1)
    return MatchCompleted(config=CONFIG, match_id=gating_match_id(GATE, index), context_id=GATE,
                          participants=[{"participant_id": "cand", "rank": ranks[0]},
                                        {"participant_id": opponent, "rank": ranks[1]}])  # fmt: skip


def play(log: Log, loop: LoopSettings, results: list[tuple[str, bool | None]]) -> list[Append]:
    """Append the games in order; after each, run the decider on the view and append its
    decision as the runtime would. Returns every decision it made."""
    decisions: list[Append] = []
    for index, (opponent, wins) in enumerate(results):
        event = game(index, opponent, wins)
        log.append(event)
        decided = on_match_completed(event, gating=log.view(), settings=loop, producer=PRODUCER)
        if decided is not None:
            decisions.append(decided)
            log.append(*decided.events)
    return decisions


def test_an_sprt_accept_stops_the_gate_early_and_later_games_change_nothing() -> None:
    loop = settings()
    log = Log()
    log.append(started({"best": 40}))
    decisions = play(log, loop, [("best", True)] * 40)

    [decision] = decisions  # decided once, however many games came after
    [completed] = decision.events
    assert isinstance(completed, EvaluationCompleted)
    [result] = completed.results
    assert result.sprt == "accept" and completed.decided_early
    stop_at = result.games
    assert stop_at < 40 and result.wins == stop_at and result.losses == 0
    expected = HeadToHead("best", stop_at, 0, 0, 40).result(loop)
    assert result == expected  # the same SPRT and Wilson bound the promoter reads
    assert decision.expected_filter == f"loop.eval.completed.{CONFIG}"
    assert decision.expected_last_seq == 0  # the config's first decision
    view = log.view()
    assert not is_open(view, GATE)
    assert tallies(view, GATE)["best"]["wins"] == stop_at  # the surplus games not counted


def test_an_undecided_sprt_runs_to_the_game_cap() -> None:
    loop = settings()
    log = Log()
    log.append(started({"best": 12, "random": 6}))
    plan = ["best", "random"] * 6 + ["best"] * 6  # planned_opponents' round-robin
    alternating = [(name, plan[:i].count(name) % 2 == 0) for i, name in enumerate(plan)]
    decisions = play(log, loop, alternating)

    [decision] = decisions
    [completed] = decision.events
    assert isinstance(completed, EvaluationCompleted) and not completed.decided_early
    by_name = {r.opponent: r for r in completed.results}
    assert by_name["best"].games == 12 and by_name["best"].sprt == "continue"
    assert by_name["random"].games == 6
    assert log.stored[-1].event is completed  # decided on the very last game, not before


def test_a_redelivered_game_is_counted_once() -> None:
    loop = settings()
    log = Log()
    log.append(started({"best": 6}))
    first = game(0, "best", True)
    log.append(first, first.model_copy(update={"event_id": "redelivered-copy"}))
    assert tallies(log.view(), GATE)["best"]["wins"] == 1
    assert on_match_completed(first, gating=log.view(), settings=loop, producer=PRODUCER) is None


@pytest.mark.parametrize(
    ("wins", "losses", "mode", "gate", "promote"),
    [
        (30, 10, "sprt_or_wilson", "sprt", True),  # SPRT accepts
        (23, 17, "sprt_or_wilson", "head_to_head", False),  # neither SPRT nor Wilson
        (23, 17, "wilson", "head_to_head", False),  # Wilson low ≤ 0.5
        (36, 4, "wilson", "wilson", True),  # Wilson low > 0.5
        (22, 18, "sprt", "sprt", False),  # SPRT mode: no accept, no promotion
        (30, 10, "sprt_truncated", "sprt", True),  # SPRT accepts
        (23, 17, "sprt_truncated", "sprt", True),  # at the cap, 0.575 > midpoint 0.557: LLR > 0
        (22, 18, "sprt_truncated", "sprt", False),  # at the cap, 0.55 < 0.557: LLR < 0
        (8, 32, "sprt_truncated", "sprt", False),  # SPRT rejects
    ],
)
def test_the_promoter_judges_the_head_to_head_the_gate_reported(
    wins: int, losses: int, mode: str, gate: str, promote: bool
) -> None:
    loop = LoopSettings.validated(
        {"evaluation": {"sprt": SPRT}, "promotion": {"head_to_head": mode}}
    )
    results = [HeadToHead(name, 40, 0, 0, 40).result(loop) for name in ("random", "heuristic")]
    results.append(HeadToHead("best-model", wins, 0, losses, 40).result(loop))
    evaluation = EvaluationCompleted(config=CONFIG, evaluation_id=GATE, candidate="cand",
                                     results=results)  # fmt: skip
    best = {"model_id": "best-model", "promoted_at": None, "artifact": None, "config": CONFIG}
    verdict = judge(evaluation, best, loop)
    assert (verdict.gate, verdict.promote) == (gate, promote)
    head = results[-1]
    assert f"W{wins} D0 L{losses}" in verdict.reason
    if gate == "wilson":
        assert verdict.statistic == head.wilson_low > loop.promotion.wilson_threshold
    if gate == "head_to_head":
        assert verdict.statistic == head.wilson_low <= loop.promotion.wilson_threshold
    if mode == "sprt_truncated":
        assert verdict.statistic == head.llr
        assert (head.llr is not None and head.llr > 0) == promote


def test_a_gate_against_a_model_rolled_back_mid_gate_promotes_nothing() -> None:
    # seen in a 60-minute run: the candidate beat generation 7 25-15, generation 7 was rolled
    # back to 6 three seconds before the gate ended, and the candidate was promoted over 6
    # with the reason quoting the games against 7 as if they were against 6
    loop = LoopSettings.validated(
        {"evaluation": {"sprt": SPRT}, "promotion": {"head_to_head": "sprt_truncated"}}
    )
    results = [HeadToHead(name, 12, 0, 0, 12).result(loop) for name in ("random", "heuristic")]
    results.append(HeadToHead("gen-7", 25, 0, 15, 40).result(loop))
    evaluation = EvaluationCompleted(config=CONFIG, evaluation_id=GATE, candidate="gen-8",
                                     results=results)  # fmt: skip
    restored = {"model_id": "gen-6", "promoted_at": None, "artifact": None, "config": CONFIG}
    verdict = judge(evaluation, restored, loop)
    assert (verdict.promote, verdict.gate) == (False, "head_to_head")
    assert "current best gen-6" in verdict.reason and "against gen-7" in verdict.reason
    assert "W25" not in verdict.reason  # no record quoted as if it were against gen-6
    # the same games judged against the model they were played against still promote
    played = {"model_id": "gen-7", "promoted_at": None, "artifact": None, "config": CONFIG}
    assert judge(evaluation, played, loop).promote


def test_bench_gate_prints_a_power_curve_that_rises_with_strength(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    from ops.bench import gate as bench_gate

    args = argparse.Namespace(
        profile="small", trials=150, elo="-200,0,400", draw_rate=0.1, seed=3, json=True
    )
    assert bench_gate.run(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = {row["elo"]: row["promoted"] for row in report["rows"]}
    assert set(rows[0.0]) == {"sprt_or_wilson", "sprt", "wilson", "sprt_truncated"}
    for mode in rows[0.0]:
        assert rows[-200.0][mode] < 0.05 < 0.9 < rows[400.0][mode], mode
        assert rows[-200.0][mode] <= rows[0.0][mode] <= rows[400.0][mode], mode
    # truncation promotes at least what the plain SPRT does, from the same games
    assert all(rows[e]["sprt_truncated"] >= rows[e]["sprt"] for e in rows)


def test_bench_gate_refuses_a_bad_strength_list(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from ops.bench import gate as bench_gate

    args = argparse.Namespace(
        profile="small", trials=10, elo="1,x", draw_rate=0.0, seed=1, json=False
    )
    assert bench_gate.run(args) == 2
    assert "'1,x'" in capsys.readouterr().err
