"""Reads a RingRift unified_elo.db and appends its matches as MatchCompleted (context "import").

The source is opened read-only. Columns are discovered, so both match_history layouts
load: the newer one (``participant_ids`` and ``rankings`` JSON, 0 = first) and the older
two-player one (``participant_a``/``participant_b`` or ``model_a``/``model_b`` plus
``winner``/``winner_id``). ``board_type`` + ``num_players`` give the config.

Matches go to the log in their original order (timestamp, then row id); the elo-rater
rates them like any other. A re-run appends nothing: each match's event id and match id
derive from its identity in the source (its game_id, else row id and timestamp), so
JetStream drops copies inside the duplicate window, and matches the Elo read model
already holds are not appended at all.

Refused, counted and reported with examples: matches that mix configs (a participant
whose id names another config, or one that the source rates only in other configs),
unknown board types, participant/ranking counts that disagree with num_players, and
rows the event model rejects (e.g. a participant listed twice).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from events import MatchCompleted, MatchParticipant, Producer, derive_event_id
from events.config import CONFIG_PATTERN
from ops.app import App
from ops.elo_arguments import BOARD_TYPES, id_config_conflict, ranks_from_positions
from ops.elo_queries import current_elo_runner

IMPORT_NAMESPACE = "ringrift-unified-elo-import"
PRODUCER = "import-elo-db"
BATCH = 500
EXAMPLES = 3


class SourceError(ValueError):
    """The file is not a RingRift Elo database we can read; the message says why."""


@dataclass(frozen=True)
class SourceMatch:
    """One match_history row, normalised: participants and their finishing positions."""

    row_id: str
    rowid: int
    timestamp: float | None
    board_type: str
    num_players: int | None
    participant_ids: list[str]
    positions: list[int]
    game_id: str | None
    tournament_id: str | None

    @property
    def match_id(self) -> str:
        if self.game_id:
            return f"ringrift:{self.game_id}"
        return f"ringrift:{self.row_id}@{self.timestamp}"

    def describe(self) -> str:
        return (
            f"row {self.row_id} ({self.board_type} {self.num_players}p): "
            f"{self.participant_ids} positions {self.positions}"
        )


@dataclass
class ImportReport:
    """What an import read, appended, found already present and skipped (with examples)."""

    read: int = 0
    imported: int = 0
    already_present: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    match_ids: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, reason: str, example: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples[reason]) < EXAMPLES:
            self.examples[reason].append(example)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "imported": self.imported,
            "already_present": self.already_present,
            "skipped": dict(self.skipped),
            "examples": dict(self.examples),
        }

    def summary(self) -> str:
        lines = [
            f"read {self.read} matches: imported {self.imported}, "
            f"already present {self.already_present}, skipped {sum(self.skipped.values())}"
        ]
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"  skipped {count} ({reason}), e.g.:")
            lines += [f"    {example}" for example in self.examples[reason]]
        return "\n".join(lines)


# ---------------------------------------------------------------- reading the source


def open_source(path: Path | str) -> sqlite3.Connection:
    if not Path(path).is_file():
        raise SourceError(f"no such file: {str(path)!r}")
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    if "match_history" not in _tables(conn):
        conn.close()
        raise SourceError(f"{str(path)!r} has no match_history table: not a RingRift Elo db")
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_master where type='table'")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"pragma table_info({table})")}


def rated_configs(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Participant id -> configs its elo_ratings rows cover (empty without that table)."""
    if "elo_ratings" not in _tables(conn):
        return {}
    columns = _columns(conn, "elo_ratings")
    id_column = "participant_id" if "participant_id" in columns else "model_id"
    if not {id_column, "board_type", "num_players"} <= columns:
        return {}
    configs: dict[str, set[str]] = defaultdict(set)
    query = f"select {id_column} as pid, board_type, num_players from elo_ratings"
    for row in conn.execute(query):
        configs[str(row["pid"])].add(f"{str(row['board_type']).lower()}_{row['num_players']}p")
    return configs


def source_matches(conn: sqlite3.Connection) -> list[SourceMatch]:
    """Every match_history row, in the order the games were played (timestamp, row id)."""
    columns = _columns(conn, "match_history")
    matches = [_source_match(row) for row in conn.execute(_select(columns))]
    return sorted(matches, key=lambda m: (m.timestamp is None, m.timestamp or 0.0, m.rowid))


def _select(columns: set[str]) -> str:
    wanted = [
        "id", "participant_ids", "rankings", "participant_a", "participant_b", "model_a",
        "model_b", "winner", "winner_id", "board_type", "num_players", "timestamp", "game_id",
        "tournament_id",
    ]  # fmt: skip
    present = [c for c in wanted if c in columns]
    return f"select rowid as _rowid, {', '.join(present)} from match_history"


def _source_match(row: sqlite3.Row) -> SourceMatch:
    data = {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite3.Row
    participants, positions = _participants(data)
    return SourceMatch(
        row_id=str(data.get("id") if data.get("id") is not None else data["_rowid"]),
        rowid=int(data["_rowid"]),
        timestamp=_seconds(data.get("timestamp")),
        board_type=str(data.get("board_type") or "").lower(),
        num_players=_count(data.get("num_players")),
        participant_ids=participants,
        positions=positions,
        game_id=data.get("game_id") or None,
        tournament_id=data.get("tournament_id") or None,
    )


def _participants(data: dict[str, Any]) -> tuple[list[str], list[int]]:
    """Participants and positions (0 = first) from the JSON columns, else the 2-player ones."""
    ids = _json(data.get("participant_ids"))
    if not ids:
        pair = [data.get("participant_a") or data.get("model_a"),
                data.get("participant_b") or data.get("model_b")]  # fmt: skip
        ids = [p for p in pair if p]
    ids = [str(p) for p in ids]
    positions = _json(data.get("rankings"))
    if positions is None or positions == []:
        positions = _positions_from_winner(ids, data.get("winner_id") or data.get("winner"))
    return ids, [int(p) for p in positions] if _all_ints(positions) else []


def _positions_from_winner(ids: list[str], winner: Any) -> list[int]:
    """Old rows name a winner only: it is first, the rest share second (no winner: a draw)."""
    if winner in (None, "", "draw"):
        return [0] * len(ids)
    if str(winner) not in ids:
        return []
    return [0 if pid == str(winner) else 1 for pid in ids]


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return None


def _all_ints(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, int) and v >= 0 for v in values)


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return float(value)
        except ValueError:
            pass
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    return None


# ---------------------------------------------------------------- checking and converting


def refusal(match: SourceMatch, known: dict[str, set[str]]) -> tuple[str, str] | None:
    """(reason, detail) when a match cannot be imported as one rated result of one config."""
    if match.board_type not in BOARD_TYPES:
        return "unknown board type", f"board_type {match.board_type!r}"
    if match.num_players not in (2, 3, 4):
        return "bad player count", f"num_players {match.num_players!r}"
    config = f"{match.board_type}_{match.num_players}p"
    if not match.positions or len(match.positions) != len(match.participant_ids):
        return "unreadable result", "participants and rankings do not pair up"
    if len(match.participant_ids) != match.num_players:
        return "player count mismatch", f"{len(match.participant_ids)} participants"
    for participant in match.participant_ids:
        conflict = id_config_conflict(participant, config)
        if conflict is not None:
            return "mixed configs", conflict
        rated_in = known.get(participant)
        if rated_in and config not in rated_in:
            return "mixed configs", f"{participant!r} is rated only in {sorted(rated_in)}"
    return None


def to_event(match: SourceMatch, producer: Producer) -> MatchCompleted:
    """The match as MatchCompleted; its ids depend only on the match's identity."""
    config = f"{match.board_type}_{match.num_players}p"
    assert re.fullmatch(CONFIG_PATTERN, config)
    ranks = ranks_from_positions(match.positions)
    extra: dict[str, Any] = {}
    if match.timestamp is not None:
        extra["occurred_at"] = datetime.fromtimestamp(match.timestamp, UTC)
    return MatchCompleted(
        event_id=derive_event_id(IMPORT_NAMESPACE, match.match_id),
        producer=producer,
        config=config,
        match_id=match.match_id,
        participants=[
            MatchParticipant(participant_id=pid, rank=rank, seat=seat)
            for seat, (pid, rank) in enumerate(zip(match.participant_ids, ranks, strict=True), 1)
        ],
        game_id=match.game_id,
        context="import",
        context_id=match.tournament_id,
        **extra,
    )


def plan(
    matches: list[SourceMatch], known: dict[str, set[str]], present: set[tuple[str, str]]
) -> tuple[list[MatchCompleted], ImportReport]:
    """The events to append, in order, and the report of what was left out and why."""
    report = ImportReport(read=len(matches))
    producer = Producer.current(PRODUCER)
    events: list[MatchCompleted] = []
    seen = set(present)
    for match in matches:
        refused = refusal(match, known)
        if refused is not None:
            report.skip(refused[0], f"{match.describe()}: {refused[1]}")
            continue
        try:
            event = to_event(match, producer)
        except ValidationError as exc:
            report.skip("invalid", f"{match.describe()}: {exc.errors()[0]['msg']}")
            continue
        if (event.config, event.match_id) in seen:
            report.already_present += 1
            continue
        seen.add((event.config, event.match_id))
        events.append(event)
    report.imported = len(events)
    report.match_ids = [(e.config, e.match_id) for e in events]
    return events, report


# ---------------------------------------------------------------- the import


def read_source(path: Path | str) -> tuple[list[SourceMatch], dict[str, set[str]]]:
    conn = open_source(path)
    try:
        return source_matches(conn), rated_configs(conn)
    finally:
        conn.close()


async def import_elo_db(app: App, path: Path | str, *, dry_run: bool = False) -> ImportReport:
    """Append the source's matches the Elo read model does not hold yet; report the rest."""
    matches, known = read_source(path)
    runner = await current_elo_runner(app)
    rows = runner.db.query("select config, match_id from elo_matches")
    present = {(row["config"], row["match_id"]) for row in rows}
    events, report = plan(matches, known, present)
    if not dry_run:
        for chunk in _chunks(events, BATCH):
            await app.store.append_many(chunk)
    return report


def _chunks(items: list[MatchCompleted], size: int) -> Iterator[list[MatchCompleted]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
