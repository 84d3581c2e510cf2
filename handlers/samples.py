"""Training samples from game records: positions replayed from GameCompleted, with the search's
visit distributions as policy targets and blended value targets, cached per game in SQLite.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path

import numpy as np

from engine import GameConfig, GameState, Move
from engine.encoding import encode_state, legal_policy_mask, move_to_index, visits_to_policy
from engine.players.neural import absolute_to_relative
from engine.serialize import match_move
from engine.training import Sample, policy_target
from events import GameCompleted, GameRange, decode
from handlers.games import seat_values
from projections.eventstore import EventStore


def game_samples(record: GameCompleted, search_weight: float = 0.0) -> list[Sample]:
    """Replay a game record into training samples (legal moves are checked on the way).

    A searched move's target is its visit distribution; forced moves (one legal move) carry
    no information and are skipped; a game recorded without any search gives one-hot
    targets of the played moves (engine.training refuses one-hot where visits exist).
    The value target is the final result, blended with the search root's value where the
    record has one: ``(1 - search_weight) * result + search_weight * root value``.
    """
    if not 0.0 <= search_weight <= 1.0:
        raise ValueError(f"search_weight must lie in [0, 1], got {search_weight!r}")
    config = GameConfig.parse(record.config)
    state = GameState.initial(config)
    samples = []
    for ply, notation in enumerate(record.moves):
        move = Move.from_notation(notation)
        visits = record.visits[ply] if record.visits is not None else None
        if len(state.legal_moves()) > 1 and (visits or record.visits is None):
            root = record.root_values[ply] if record.root_values is not None else None
            value = seat_values(record.ranking, state.current_player)
            if root is not None and search_weight > 0:
                searched = absolute_to_relative(np.asarray(root), state.current_player)
                value = ((1 - search_weight) * value + search_weight * searched).astype(np.float32)
            samples.append(_sample(state, move, visits, value))
        state.apply(move)
    return samples


def _sample(
    state: GameState, move: Move, visits: dict[str, int] | None, value: np.ndarray
) -> Sample:
    planes = encode_state(state)
    mask = legal_policy_mask(state)
    if visits:
        counts = {Move.from_notation(m): float(c) for m, c in visits.items()}
        return Sample.from_search(planes, visits_to_policy(state, counts), value, mask)
    played = move_to_index(state, match_move(state, move))
    return Sample(planes, policy_target(played=played), value, mask)


class SampleCache:
    """Decoded samples per game, keyed by (stream, sequence, value blend), in one SQLite file.

    ``search_weight`` is the value-target blend the samples were built with (see
    game_samples): samples built with another blend are not reused.
    """

    def __init__(self, path: Path, search_weight: float = 0.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.search_weight = search_weight
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("drop table if exists samples")  # the cache before value blends
        self.db.execute(
            "create table if not exists game_samples (stream text, seq integer, "
            "search_weight real, generation integer, data blob, "
            "primary key (stream, seq, search_weight))"
        )

    def get(self, stream: str, seq: int) -> tuple[int, list[Sample]] | None:
        """(the game's model generation, its samples), if cached."""
        row = self.db.execute(
            "select generation, data from game_samples "
            "where stream = ? and seq = ? and search_weight = ?",
            (stream, seq, self.search_weight),
        ).fetchone()
        return (int(row[0]), unpack_samples(row[1])) if row is not None else None

    def put(self, stream: str, seq: int, generation: int, samples: list[Sample]) -> None:
        with self.db:
            self.db.execute(
                "insert or replace into game_samples values (?, ?, ?, ?, ?)",
                (stream, seq, self.search_weight, generation, pack_samples(samples)),
            )

    def close(self) -> None:
        self.db.close()


def pack_samples(samples: list[Sample]) -> bytes:
    buffer = io.BytesIO()
    if not samples:
        np.savez_compressed(buffer, empty=np.zeros(0))
        return buffer.getvalue()
    np.savez_compressed(
        buffer,
        planes=np.stack([s.planes for s in samples]),
        value=np.stack([s.value for s in samples]),
        index=np.concatenate([s.policy[0] for s in samples]),
        weight=np.concatenate([s.policy[1] for s in samples]),
        offsets=np.cumsum([0] + [len(s.policy[0]) for s in samples]),
        mask=np.packbits(np.stack([s.legal_mask for s in samples]), axis=1),  # type: ignore[misc]
        mask_size=np.array([len(samples[0].legal_mask)]),  # type: ignore[arg-type]
    )
    return buffer.getvalue()


def unpack_samples(data: bytes) -> list[Sample]:
    """Samples back from `pack_samples`. Each array is read from the archive once: indexing
    the NpzFile per sample would decompress the whole array again for every sample and
    leave each sample holding its own full copy (quadratic time and memory)."""
    with np.load(io.BytesIO(data)) as archive:
        if "empty" in archive:
            return []
        arrays = {name: archive[name] for name in archive.files}
    offsets, size = arrays["offsets"], int(arrays["mask_size"][0])
    planes, values, index, weight = (
        arrays["planes"],
        arrays["value"],
        arrays["index"],
        arrays["weight"],
    )
    masks = np.unpackbits(arrays["mask"], axis=1, count=size).astype(bool)
    return [
        Sample(
            planes[i],
            (index[offsets[i] : offsets[i + 1]], weight[offsets[i] : offsets[i + 1]]),
            values[i],
            masks[i],
        )
        for i in range(len(offsets) - 1)
    ]


async def load_samples(
    store: EventStore, games: GameRange, cache: SampleCache
) -> tuple[list[Sample], int]:
    """Samples of every game of the range (cached per game); returns them and the games used.

    The range is the training window as the data gate chose it (handlers.data_gate)."""
    records = []
    async for chunk in store.read_raw(
        games.stream, games.subject, start_seq=games.first_seq, end_seq=games.last_seq
    ):
        records.extend(chunk)
    samples: list[Sample] = []
    used = 0
    for record in records:
        cached = await asyncio.to_thread(cache.get, record.stream, record.seq)
        if cached is None:
            event = decode(record.data)
            if not isinstance(event, GameCompleted):
                continue
            samples_of = await asyncio.to_thread(game_samples, event, cache.search_weight)
            cached = (event.generation, samples_of)
            await asyncio.to_thread(cache.put, record.stream, record.seq, *cached)
        samples.extend(cached[1])
        used += 1
    return samples, used
