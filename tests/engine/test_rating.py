"""Tests for engine.rating: Elo updates against hand-computed figures and ML ratings."""

from __future__ import annotations

import math

import choix
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rating import (
    DEFAULT_RATING,
    ELO_PER_NAT,
    K_FACTOR,
    PINNED_RATINGS,
    elo_update,
    expected_score,
    ml_ratings,
)


def _results(a: str, b: str, games: int, a_wins: int) -> list[dict[str, int]]:
    return [{a: 1, b: 2}] * a_wins + [{a: 2, b: 1}] * (games - a_wins)


def test_expected_score_equal_and_400_apart() -> None:
    assert expected_score(1500, 1500) == 0.5
    assert expected_score(1900, 1500) == pytest.approx(10 / 11)
    assert expected_score(1500, 1900) == pytest.approx(1 / 11)


def test_two_player_update_matches_hand_computation() -> None:
    # A 1600 beats B 1400: E_A = 1/(1+10^(-0.5)) = 0.759747; delta = 32 * 0.240253 = 7.688
    new = elo_update({"a": 1600.0, "b": 1400.0}, {"a": 1, "b": 2})
    assert new["a"] == pytest.approx(1607.6881, abs=1e-3)
    assert new["b"] == pytest.approx(1392.3119, abs=1e-3)


def test_draw_between_equals_does_not_move() -> None:
    assert elo_update({"a": 1500.0, "b": 1500.0}, {"a": 1, "b": 1}) == {"a": 1500.0, "b": 1500.0}


def test_three_player_pairwise_decomposition_by_hand() -> None:
    # All at 1500, ranks a1 b2 c3: each pair has E = 0.5, K/(N-1) = 16.
    # a: +8 +8 = +16; b: -8 +8 = 0; c: -8 -8 = -16.
    new = elo_update({"a": 1500.0, "b": 1500.0, "c": 1500.0}, {"a": 1, "b": 2, "c": 3})
    assert new == pytest.approx({"a": 1516.0, "b": 1500.0, "c": 1484.0})


def test_four_player_with_tie_and_missing_participant() -> None:
    # d is missing (starts at 1500). K/(N-1) = 32/3. b and c tie for second.
    ratings = {"a": 1500.0, "b": 1500.0, "c": 1500.0}
    new = elo_update(ratings, {"a": 1, "b": 2, "c": 2, "d": 4})
    pair_k = K_FACTOR / 3
    assert new["a"] == pytest.approx(1500 + 3 * pair_k * 0.5)
    assert new["b"] == pytest.approx(1500 + pair_k * (-0.5 + 0 + 0.5))
    assert new["c"] == pytest.approx(new["b"])
    assert new["d"] == pytest.approx(1500 - 3 * pair_k * 0.5)


def test_pinned_ratings_never_move() -> None:
    new = elo_update({"random": 2000.0, "x": 1500.0}, {"random": 1, "x": 2})
    assert new["random"] == PINNED_RATINGS["random"]
    # x loses to a 400-rated pin: E_x = 1/(1+10^(-2.75)), delta = -32 * E_x
    assert new["x"] == pytest.approx(1500 - 32 / (1 + 10 ** (-1100 / 400)))
    again = elo_update(new, {"heuristic": 3, "random": 2, "x": 1})
    assert again["heuristic"] == 1200.0 and again["random"] == 400.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(800, 2400), min_size=2, max_size=4),
    st.lists(st.integers(1, 4), min_size=4, max_size=4),
)
def test_unpinned_updates_conserve_rating(ratings: list[float], ranks: list[int]) -> None:
    names = [f"p{i}" for i in range(len(ratings))]
    new = elo_update(dict(zip(names, ratings, strict=True)), dict(zip(names, ranks, strict=False)))
    assert sum(new.values()) == pytest.approx(sum(ratings), abs=1e-9)


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        ({"a": 1}, "a match needs at least 2 participants, got {'a': 1}"),
        ({}, "a match needs at least 2 participants, got {}"),
        ({"a": 1, "b": 0}, "rank of 'b' must be an integer >= 1, got {'a': 1, 'b': 0}"),
        ({"a": 1, "b": -2}, "rank of 'b' must be an integer >= 1, got {'a': 1, 'b': -2}"),
        ({"a": 1, "b": 1.5}, "rank of 'b' must be an integer >= 1, got {'a': 1, 'b': 1.5}"),
    ],
)
def test_invalid_ranks_are_rejected_with_the_input_quoted(ranks: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        elo_update({}, ranks)
    assert str(raised.value) == message


def test_published_three_player_case() -> None:
    matches = (
        _results("A", "B", 100, 75) + _results("B", "C", 100, 75) + _results("A", "C", 100, 90)
    )
    ratings = ml_ratings(matches)
    b = ratings["B"].rating
    assert ratings["A"].rating - b == pytest.approx(190.85, abs=0.05)
    assert ratings["C"].rating - b == pytest.approx(-190.85, abs=0.05)
    assert np.mean([r.rating for r in ratings.values()]) == pytest.approx(DEFAULT_RATING)
    assert all(r.games == 200 for r in ratings.values())
    for r in ratings.values():
        assert r.low < r.rating < r.high
        assert 20 < r.high - r.rating < 80


def test_two_player_interval_matches_binomial_fisher_information() -> None:
    # 100 games, 75 wins: theta diff = ln 3; var(diff) = 1 / (n p (1-p)); each rating holds
    # half the difference (sum-zero), so its standard error is half of that of the difference.
    ratings = ml_ratings(_results("a", "b", 100, 75), regularization=1e-9)
    diff = ratings["a"].rating - ratings["b"].rating
    assert diff == pytest.approx(ELO_PER_NAT * math.log(3), abs=1e-3)
    se_diff = ELO_PER_NAT / math.sqrt(100 * 0.75 * 0.25)
    assert ratings["a"].high - ratings["a"].rating == pytest.approx(
        1.959964 * se_diff / 2, rel=1e-4
    )


def test_matches_choix_on_tie_free_pairwise_and_ranking_data() -> None:
    rng = np.random.default_rng(7)
    names = ["a", "b", "c", "d"]
    strength = np.array([1.0, 0.3, -0.2, -1.1])
    matches = []
    for _ in range(300):
        seats = rng.permutation(4)[: rng.integers(2, 5)]
        order = []
        remaining = list(seats)
        while remaining:
            p = np.exp(strength[remaining]) / np.exp(strength[remaining]).sum()
            order.append(remaining.pop(int(rng.choice(len(remaining), p=p))))
        matches.append({names[s]: rank + 1 for rank, s in enumerate(order)})
    ours = ml_ratings(matches, anchors={}, regularization=1e-6)
    rankings = [sorted(m, key=m.get) for m in matches]
    theirs = choix.opt_rankings(4, [[names.index(n) for n in r] for r in rankings], alpha=5e-7)
    theirs = DEFAULT_RATING + ELO_PER_NAT * (theirs - theirs.mean())
    for i, name in enumerate(names):
        assert ours[name].rating == pytest.approx(theirs[i], abs=0.5)
    pairs = [m for m in matches if len(m) == 2]
    ours = ml_ratings(pairs, anchors={}, regularization=1e-6)
    data = [tuple(names.index(n) for n in sorted(m, key=m.get)) for m in pairs]
    theirs = choix.opt_pairwise(4, data, alpha=5e-7)
    theirs = DEFAULT_RATING + ELO_PER_NAT * (theirs - theirs.mean())
    for i, name in enumerate(names):
        assert ours[name].rating == pytest.approx(theirs[i], abs=0.5)


def test_anchors_are_held_and_others_placed_relative_to_them() -> None:
    matches = _results("x", "random", 40, 30) + _results("x", "heuristic", 40, 10)
    ratings = ml_ratings(matches)
    assert ratings["random"] == ratings["random"].__class__(400.0, 400.0, 400.0, 40)
    assert ratings["heuristic"].rating == 1200.0
    assert 400.0 < ratings["x"].rating < 1200.0
    assert ratings["x"].low < ratings["x"].rating < ratings["x"].high


def test_undefeated_and_winless_players_are_finite() -> None:
    ratings = ml_ratings(_results("top", "bottom", 20, 20))
    assert all(math.isfinite(r.rating) and math.isfinite(r.high) for r in ratings.values())
    assert ratings["top"].rating > ratings["bottom"].rating + 400


def test_ties_count_as_half_a_win_each_way() -> None:
    drawn = ml_ratings([{"a": 1, "b": 1}] * 10 + _results("a", "b", 10, 10), anchors={})
    split = ml_ratings(_results("a", "b", 10, 5) + _results("a", "b", 10, 10), anchors={})
    assert drawn["a"].rating == pytest.approx(split["a"].rating, abs=1e-6)


def test_multiplayer_symmetric_results_give_equal_ratings() -> None:
    matches = [{"a": 1, "b": 2, "c": 3}, {"b": 1, "c": 2, "a": 3}, {"c": 1, "a": 2, "b": 3}]
    ratings = ml_ratings(matches * 5)
    assert [r.rating for r in ratings.values()] == pytest.approx([DEFAULT_RATING] * 3)


def test_empty_history_and_bad_arguments() -> None:
    assert ml_ratings([]) == {}
    with pytest.raises(ValueError, match="confidence"):
        ml_ratings([{"a": 1, "b": 2}], confidence=1.0)
    with pytest.raises(ValueError, match="'solo'"):
        ml_ratings([{"solo": 1}])
