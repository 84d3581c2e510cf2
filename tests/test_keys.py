"""The shared helpers every layer builds names with: config names and participant rating keys."""

from __future__ import annotations

import pytest

from engine.config import ALL_CONFIGS, GameConfig
from events import MatchParticipant
from events.config import split_config
from events.keys import MODEL_KEY_PREFIX, is_model_key, rating_key
from events.streams import games_subject

SHA = "0123456789abcdef" * 4
BAD_CONFIGS = ["square8", "square8_5p", "square8_1p", "hex9_2p", "square8_2", "_2p", "", "square8_2p\n", "SQUARE8_2P", "square8_02p", "hex8_\uff13p"]  # fmt: skip


@pytest.mark.parametrize("config", [c.name for c in ALL_CONFIGS])
def test_split_config_agrees_with_the_engines_parser(config: str) -> None:
    board, players = split_config(config)
    parsed = GameConfig.parse(config)
    assert (board, players) == (parsed.board, parsed.num_players)
    assert f"{board}_{players}p" == config


@pytest.mark.parametrize("config", BAD_CONFIGS)
def test_a_bad_config_is_a_value_error_quoting_it_in_both_parsers(config: str) -> None:
    with pytest.raises(ValueError, match="bad config name") as error:
        split_config(config)
    assert repr(config) in str(error.value)
    with pytest.raises(ValueError):
        GameConfig.parse(config)


def test_games_subject_is_built_from_the_parsed_config() -> None:
    assert games_subject("hex8_3p", "selfplay") == "games.hex8.3p.selfplay"
    assert games_subject("square19_4p") == "games.square19.4p.*"
    with pytest.raises(ValueError, match="'hex8_9p'"):
        games_subject("hex8_9p")


def test_a_model_is_rated_by_its_weights_hash_else_by_its_id() -> None:
    assert rating_key("m-1", SHA) == "sha256:0123456789abcdef"
    assert rating_key("m-1", SHA) == rating_key("another-name", SHA)
    assert rating_key("heuristic") == "heuristic"
    assert rating_key("m-1", None) == rating_key("m-1", "") == "m-1"
    assert is_model_key(rating_key("m-1", SHA)) and not is_model_key("m-1")
    assert rating_key("m-1", SHA).startswith(MODEL_KEY_PREFIX)


@pytest.mark.parametrize("sha", ["abc", SHA.upper(), SHA + "0", "g" * 64])
def test_a_bad_hash_is_a_value_error_quoting_it(sha: str) -> None:
    with pytest.raises(ValueError, match="bad model_sha256") as error:
        rating_key("m-1", sha)
    assert repr(sha) in str(error.value)


def test_a_match_participant_is_keyed_by_the_same_helper() -> None:
    model = MatchParticipant(participant_id="m-1", rank=1, model_sha256=SHA)
    tier = MatchParticipant(participant_id="random", rank=2)
    assert (model.key, tier.key) == (rating_key("m-1", SHA), "random")
