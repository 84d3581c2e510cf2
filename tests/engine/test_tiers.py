"""Tests for engine.tiers and the `ringloop play` command."""

from __future__ import annotations

import json
import random

import pytest

from engine.config import GameConfig
from engine.encoding import network_spec
from engine.network import build_network
from engine.players import HeuristicPlayer, MCTSPlayer, NetworkEvaluator, RandomPlayer
from engine.tiers import TIERS, make_player, tier
from ops.cli import main

SQUARE8 = GameConfig("square8", 2)


def test_ladder_and_players() -> None:
    assert [t.difficulty for t in TIERS] == [1, 2, 3, 4, 5]
    assert isinstance(make_player("random", SQUARE8), RandomPlayer)
    assert isinstance(make_player("d2", SQUARE8), HeuristicPlayer)
    player = make_player("mcts-256", SQUARE8, rng=random.Random(0))
    assert isinstance(player, MCTSPlayer) and player.settings.simulations == 256
    assert tier("mcts-12").simulations == 12


def test_network_tiers_use_the_network_and_check_its_config() -> None:
    model = build_network(network_spec(SQUARE8, blocks=1, channels=4))
    player = make_player("mcts-64", SQUARE8, network=model)
    assert isinstance(player, MCTSPlayer) and isinstance(player.evaluator, NetworkEvaluator)
    with pytest.raises(ValueError, match="square8_2p"):
        make_player("mcts-64", GameConfig("hex8", 2), network=model)


def test_unknown_tier_is_rejected() -> None:
    with pytest.raises(ValueError, match="'grandmaster'"):
        make_player("grandmaster", SQUARE8)


def test_play_command_writes_a_record(tmp_path, capsys) -> None:
    out = tmp_path / "game.json"
    code = main(["play", "--config", "square8_2p", "--players", "heuristic,random",
                 "--seed", "5", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "move 1:" in printed and "winner" in printed
    record = json.loads(out.read_text())
    assert record["boardType"] == "square8" and record["seed"] == 5
    assert len(record["moves"]) == len(record["notation"]) > 10
    assert sorted(record["ranking"]) == [1, 2]


def test_play_command_rejects_wrong_player_count(capsys) -> None:
    assert main(["play", "--config", "square8_3p", "--players", "random,random"]) == 2
    assert "needs 3 players" in capsys.readouterr().err
