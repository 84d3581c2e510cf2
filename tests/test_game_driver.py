"""The continuous-batching driver of handlers.games: slots refilled as games end, records
independent of how many games run at once, Gumbel selfplay records whose targets the trainer
reads as the improved policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import GameConfig
from engine.encoding import network_spec
from engine.network import build_network
from engine.players.evaluators import HeuristicEvaluator
from engine.players.mcts import SearchSettings
from engine.players.neural import NetworkEvaluator
from events import Producer
from handlers.agents import Agent, model_agent
from handlers.games import PlayStats, game_completed, play_games
from handlers.samples import game_samples

CONFIG = GameConfig.parse("square8_2p")


def _agent(kind: str, leaves: int = 1) -> Agent:
    search = SearchSettings(simulations=6, kind=kind, leaves_per_tree=leaves, temperature_moves=4)
    return Agent(f"h-{kind}", evaluator=HeuristicEvaluator(), search=search, noise=True)


def _play(agent: Agent, games: int, parallel: int | None, stats: PlayStats | None = None):  # type: ignore[no-untyped-def]
    seeds = [1000 + i for i in range(games)]
    return play_games(CONFIG, [[agent, agent]] * games, seeds, max_moves=40, parallel=parallel,
                      stats=stats)  # fmt: skip


@pytest.mark.parametrize("kind", ["puct", "gumbel"])
def test_records_do_not_depend_on_how_many_games_run_at_once(kind: str) -> None:
    agent = _agent(kind)
    stats = PlayStats()
    narrow = _play(agent, 5, parallel=2, stats=stats)
    wide = _play(agent, 5, parallel=None)
    assert [g.moves for g in narrow] == [g.moves for g in wide]
    assert [g.visits for g in narrow] == [g.visits for g in wide]
    assert [g.seed for g in narrow] == [1000 + i for i in range(5)]
    per_tree = 1 if kind == "puct" else 6  # Gumbel: a leaf under each considered root move
    assert stats.positions > 0 and stats.positions / stats.batches <= 2 * per_tree  # two slots


def test_virtual_loss_batches_more_leaves_per_round() -> None:
    one, four = PlayStats(), PlayStats()
    _play(_agent("puct", 1), 2, parallel=None, stats=one)
    _play(_agent("puct", 4), 2, parallel=None, stats=four)
    assert four.positions / four.batches > one.positions / one.batches


def test_bad_parallel_is_refused() -> None:
    with pytest.raises(ValueError, match="parallel must be >= 1, got 0"):
        _play(_agent("puct"), 1, parallel=0)


def test_gumbel_selfplay_records_train_on_the_improved_policy() -> None:
    torch.manual_seed(0)
    network = build_network(network_spec(CONFIG, blocks=1, channels=8))
    search = SearchSettings(simulations=8, kind="gumbel", temperature_moves=4)
    agent = model_agent("m", NetworkEvaluator(network), search, sha256="0" * 64, noise=True)
    (game,) = play_games(CONFIG, [[agent, agent]], [7], max_moves=30)
    record = game_completed(game, purpose="selfplay", game_id="g", producer=Producer.current("t"))
    assert record.visits is not None
    searched = [v for v in record.visits if v]
    assert searched and any(len(v) > 1 for v in searched)  # soft targets, not the moves
    for ply, weights in enumerate(record.visits):
        assert not weights or record.moves[ply] in weights  # the played move is in its target
    samples = game_samples(record)
    assert len(samples) == len(searched)
    for sample, weights in zip(samples, searched, strict=True):
        expected = np.array(sorted(weights.values()), dtype=np.float64)
        assert np.allclose(np.sort(sample.policy[1]), expected / expected.sum(), atol=1e-6)


@pytest.mark.parametrize(("opening", "distinct"), [(0, 1), (6, 3)])
def test_gumbel_without_noise_is_deterministic_after_the_sampled_opening(
    opening: int, distinct: int
) -> None:
    search = SearchSettings(simulations=6, kind="gumbel", temperature_moves=opening)
    agent = Agent("g", evaluator=HeuristicEvaluator(), search=search, noise=False)
    games = play_games(CONFIG, [[agent, agent]] * 3, [1, 2, 3], max_moves=12)
    assert len({tuple(g.moves) for g in games}) == distinct


class _ThreadNoting(NetworkEvaluator):
    """A real network evaluator that notes the thread of each forward pass (and can fail)."""

    def __init__(self, fail_after: int | None = None) -> None:
        torch.manual_seed(3)
        super().__init__(build_network(network_spec(CONFIG, blocks=1, channels=8)))
        self.threads: set[int] = set()
        self.fail_after = fail_after

    def forward(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import threading

        self.threads.add(threading.get_ident())
        if self.fail_after is not None and len(self.threads) and self.calls >= self.fail_after:
            raise RuntimeError("device lost")
        return super().forward(planes)


def _network_games(evaluator: NetworkEvaluator, pipeline: float | None):  # type: ignore[no-untyped-def]
    search = SearchSettings(simulations=8, kind="gumbel", temperature_moves=4)
    agent = model_agent("net", evaluator, search, sha256=None, noise=True)
    seeds = [2000 + i for i in range(6)]
    return play_games(CONFIG, [[agent, agent]] * 6, seeds, max_moves=30, parallel=4,
                      pipeline=pipeline)  # fmt: skip


def test_a_pipelined_driver_plays_the_same_games_with_the_network_in_its_own_thread() -> None:
    import sys
    import threading

    before = sys.getswitchinterval()
    plain, piped = _ThreadNoting(), _ThreadNoting()
    one_lane = _network_games(plain, None)
    two_lanes = _network_games(piped, 5e-5)
    assert [g.moves for g in two_lanes] == [g.moves for g in one_lane]
    # the targets are rounded improved policies: a forward pass over another batch may
    # differ in the last float bits, moving a weight by one unit at most
    for piped_game, plain_game in zip(two_lanes, one_lane, strict=True):
        for a, b in zip(piped_game.visits, plain_game.visits, strict=True):
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                assert max(abs(a.get(m, 0) - b.get(m, 0)) for m in a.keys() | b.keys()) <= 1
    assert plain.threads == {threading.get_ident()}
    assert piped.threads and threading.get_ident() not in piped.threads  # forward elsewhere
    assert piped.positions_evaluated == plain.positions_evaluated
    assert sys.getswitchinterval() == before  # restored


def test_a_failing_forward_pass_in_the_pipeline_reaches_the_caller() -> None:
    import sys

    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError, match="device lost"):
        _network_games(_ThreadNoting(fail_after=3), 5e-5)
    assert sys.getswitchinterval() == before


def test_overlapping_pipelined_drivers_share_the_switch_interval_and_restore_it_once() -> None:
    import sys

    from handlers.games import _switching

    before = sys.getswitchinterval()
    first, second = _switching(2e-4), _switching(5e-5)
    first.__enter__()
    assert sys.getswitchinterval() == pytest.approx(2e-4)
    second.__enter__()
    assert sys.getswitchinterval() == pytest.approx(5e-5)  # the smaller asked
    first.__exit__(None, None, None)  # the first leaves while the second still runs
    assert sys.getswitchinterval() == pytest.approx(5e-5)
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before  # the last to leave restores the original
    with _switching(None):
        assert sys.getswitchinterval() == before
