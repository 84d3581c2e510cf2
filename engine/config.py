"""Game configurations (board type x player count) and the per-board rule constants."""

from __future__ import annotations

from dataclasses import dataclass

BOARD_TYPES = ("square8", "hex8", "square19", "hexagonal")
PLAYER_COUNTS = (2, 3, 4)

# board -> (total cells, rings per player, is hex, radius or side length)
_BOARD_FACTS: dict[str, tuple[int, int, bool, int]] = {
    "square8": (64, 18, False, 8),
    "hex8": (61, 18, True, 4),
    "square19": (361, 72, False, 19),
    "hexagonal": (469, 96, True, 12),
}


def _check_board(board: str) -> None:
    if board not in _BOARD_FACTS:
        raise ValueError(f"unknown board type {board!r}; expected one of {BOARD_TYPES}")


def rings_per_player(board: str) -> int:
    """Rings each player owns at the start (R020)."""
    _check_board(board)
    return _BOARD_FACTS[board][1]


def total_cells(board: str) -> int:
    """Number of playable cells on the board (R001)."""
    _check_board(board)
    return _BOARD_FACTS[board][0]


def is_hex(board: str) -> bool:
    _check_board(board)
    return _BOARD_FACTS[board][2]


def line_length(board: str, num_players: int) -> int:
    """Effective line length (R120): 3 on the small boards with 3-4 players, else 4."""
    _check_board(board)
    if board in ("square8", "hex8") and num_players >= 3:
        return 3
    return 4


def victory_threshold(board: str, num_players: int) -> int:
    """Ring-elimination victory threshold (R061): round(R * (N + 1) / 3)."""
    return round(rings_per_player(board) * (num_players + 1) / 3)


def territory_minimum(board: str, num_players: int) -> int:
    """Territory victory minimum (R062): floor(cells / N) + 1, plus a majority over opponents."""
    return total_cells(board) // num_players + 1


def legacy_territory_threshold(board: str) -> int:
    """The legacy >50% territory threshold RingRift still serializes."""
    return total_cells(board) // 2 + 1


@dataclass(frozen=True)
class GameConfig:
    """One of the 12 configurations: a board type and a player count."""

    board: str
    num_players: int

    def __post_init__(self) -> None:
        _check_board(self.board)
        if self.num_players not in PLAYER_COUNTS:
            raise ValueError(f"num_players must be 2, 3 or 4, got {self.num_players!r}")

    @property
    def name(self) -> str:
        return f"{self.board}_{self.num_players}p"

    @classmethod
    def parse(cls, name: str) -> GameConfig:
        """Parse "square8_2p" style names: exactly the names of ALL_CONFIGS.

        The engine's own parser (it imports nothing of events/); it accepts the same names as
        events.config.split_config (CONFIG_PATTERN), which tests/test_keys.py checks.
        """
        board, sep, players = name.rpartition("_")
        if not sep or not players.endswith("p") or not players[:-1].isdigit():
            raise ValueError(f"bad config name {name!r}; expected e.g. 'square8_2p'")
        if board not in _BOARD_FACTS:
            raise ValueError(f"bad config name {name!r}: unknown board {board!r}")
        config = cls(board, int(players[:-1]))
        if config.name != name:  # "square8_02p": only the canonical spelling names a config
            raise ValueError(f"bad config name {name!r}; expected {config.name!r}")
        return config

    @property
    def rings_per_player(self) -> int:
        return rings_per_player(self.board)

    @property
    def line_length(self) -> int:
        return line_length(self.board, self.num_players)

    @property
    def victory_threshold(self) -> int:
        return victory_threshold(self.board, self.num_players)

    @property
    def territory_minimum(self) -> int:
        return territory_minimum(self.board, self.num_players)

    @property
    def total_cells(self) -> int:
        return total_cells(self.board)


ALL_CONFIGS: tuple[GameConfig, ...] = tuple(
    GameConfig(board, n) for board in BOARD_TYPES for n in PLAYER_COUNTS
)
