"""RingRift's Elo arguments in ringloop's terms: config names, ranks, the MatchCompleted of a result.

Pure functions for ``ops.elo_core``'s write path (and ``ops.elo_import``): RingRift's
``board_type`` + ``num_players`` become a config name, finishing positions become ranks, and
a reported result becomes the MatchCompleted event to append, or a MatchRefused saying why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from engine.config import BOARD_TYPES
from events import MatchCompleted, MatchParticipant, Producer, derive_event_id
from events.config import CONFIG_PATTERN, split_config
from events.envelope import new_event_id
from projections.tables import Tables

_BOARD_ALIASES = {"sq8": "square8", "sq19": "square19"}
_ID_CONFIG = re.compile(
    r"(?:^|[_:/.-])(square8|square19|hexagonal|hex8|sq8|sq19)_([234])p(?=$|[_:/.-])"
)
_ID_PLAYERS = re.compile(r"_([234])p(?=$|[_:/.-])")


class MatchRefused(ValueError):
    """A result the compat layer will not record (cross-config, bad ranks): says why."""


# ---------------------------------------------------------------- configs


def config_name(
    board_type: object = None, num_players: int | None = None, config: str | None = None
) -> str:
    """``square8_2p`` from RingRift's board_type + num_players (or a config given as is)."""
    if config is None:
        if board_type is None or num_players is None:
            raise ValueError("give config= or both board_type and num_players")
        board = str(getattr(board_type, "value", board_type)).lower()
        config = f"{_BOARD_ALIASES.get(board, board)}_{int(num_players)}p"
    if not re.fullmatch(CONFIG_PATTERN, config):
        raise ValueError(
            f"unknown config {config!r}: boards are {', '.join(BOARD_TYPES)}, players 2-4"
        )
    return config


def optional_config(board_type: object, num_players: int | None, config: str | None) -> str | None:
    """config_name, or None (every config) when no config argument is given."""
    if config is None and board_type is None and num_players is None:
        return None
    return config_name(board_type, num_players, config)


def id_config_conflict(participant_id: str, config: str) -> str | None:
    """Why an id that names a config (``ringrift_best_square8_4p``) cannot play in `config`."""
    _, players = split_config(config)
    named = _ID_CONFIG.search(participant_id)
    if named is not None:
        named_config = f"{_BOARD_ALIASES.get(named[1], named[1])}_{named[2]}p"
        if named_config != config:
            return f"{participant_id!r} is a {named_config} participant, not {config}"
        return None
    count = _ID_PLAYERS.search(participant_id.split(":")[0])
    if count is not None and int(count[1]) != players:
        return f"{participant_id!r} is a {count[1]}-player participant, not {config}"
    return None


# ---------------------------------------------------------------- results


def ranks_from_positions(positions: Sequence[int]) -> list[int]:
    """RingRift's final positions (0 = first; ties share one) as ranks 1..n ("1224")."""
    return [1 + sum(other < own for other in positions) for own in positions]


def positions_from_winner(model_a: str, model_b: str, winner: str | None) -> list[int]:
    """A two-player result's positions; winner: either id, "model_a"/"model_b", "draw" or None."""
    if winner is None or winner == "draw":
        return [0, 0]
    if winner in (model_a, "model_a"):
        return [0, 1]
    if winner in (model_b, "model_b"):
        return [1, 0]
    raise MatchRefused(
        f"winner {winner!r} is neither {model_a!r} nor {model_b!r} (nor 'draw' / None)"
    )


def match_event(
    registered: Tables,
    producer: Producer,
    config: str,
    participant_ids: list[str],
    positions: list[int],
    match_id: str,
    game_id: str | None,
    tournament_id: str | None,
    context: str,
) -> MatchCompleted:
    """The MatchCompleted of a result, its models keyed by their registered weights' hash.

    `registered` is the RegisteredModels read model (``ops.elo_models``). Raises MatchRefused.
    """
    if len(positions) != len(participant_ids):
        raise MatchRefused(
            f"{len(participant_ids)} participants but {len(positions)} rankings: "
            f"{participant_ids!r} {positions!r}"
        )
    ranks = ranks_from_positions(positions)
    try:
        participants = [
            MatchParticipant(**_participant(registered, config, participant_id, rank))
            for participant_id, rank in zip(participant_ids, ranks, strict=True)
        ]
        return MatchCompleted(
            event_id=derive_event_id("elo-service:match", f"{config}:{game_id}")
            if game_id
            else new_event_id(),
            producer=producer,
            config=config,
            match_id=match_id,
            participants=participants,
            game_id=game_id,
            context=context,
            context_id=tournament_id,
        )
    except ValidationError as exc:
        reasons = "; ".join(error["msg"] for error in exc.errors())
        raise MatchRefused(f"refused {config} match {participant_ids!r}: {reasons}") from None


def _participant(registered: Tables, config: str, participant_id: str, rank: int) -> dict[str, Any]:
    conflict = id_config_conflict(participant_id, config)
    if conflict is not None:
        raise MatchRefused(f"cross-config match refused: {conflict}; ratings are per config")
    model = registered.get("elo_compat_models", participant_id, config)
    entry: dict[str, Any] = {"participant_id": participant_id, "rank": rank}
    if model is not None:
        entry.update(config=config, model_sha256=model["model_sha256"])
    else:
        elsewhere = [
            row["config"]
            for row in registered.rows("elo_compat_models")
            if row["model_id"] == participant_id
        ]
        if elsewhere:  # the event's validator refuses it, naming the configs
            entry["config"] = elsewhere[0]
    return entry
