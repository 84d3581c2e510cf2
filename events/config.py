"""Config names on every event and subject: the board type × player count, and its one parser."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

BOARDS = ("square8", "hex8", "square19", "hexagonal")
"""The board types, smallest first."""
CONFIG_PATTERN = rf"^({'|'.join(BOARDS)})_[234]p$"
ConfigName = Annotated[str, StringConstraints(pattern=CONFIG_PATTERN)]
"""A board type × player count, e.g. ``square8_2p``."""

_CONFIG = re.compile(CONFIG_PATTERN)


def split_config(config: str) -> tuple[str, int]:
    """The board and player count of a config name: ``"hex8_3p"`` -> ``("hex8", 3)``.

    Raises ValueError quoting `config` when it is not one of the 12 configs.
    """
    if not isinstance(config, str) or _CONFIG.fullmatch(config) is None:
        raise ValueError(
            f"bad config name {config!r}; expected <board>_<players>p with board square8, "
            "hex8, square19 or hexagonal and 2-4 players, e.g. 'square8_2p'"
        )
    board, players = config.rsplit("_", 1)
    return board, int(players[:-1])
