"""The subject/stream table: which stream holds which subjects, and the buckets beside them."""

from __future__ import annotations

from events.config import split_config

GAMES_STREAM = "RINGLOOP_GAMES"
LOG_STREAM = "RINGLOOP_LOG"
WORK_STREAM = "RINGLOOP_WORK"
LEASES_BUCKET = "ringloop-leases"
MODELS_BUCKET = "ringloop-models"
SNAPSHOTS_BUCKET = "ringloop-snapshots"  # read-model snapshots, one object per projection

STREAM_SUBJECTS: dict[str, list[str]] = {
    GAMES_STREAM: ["games.>"],
    LOG_STREAM: ["loop.>"],
    WORK_STREAM: ["work.>"],
}


def stream_for_subject(subject: str) -> str:
    """The stream that stores `subject` (raises ValueError quoting it when none does)."""
    if subject.startswith("games."):
        return GAMES_STREAM
    if subject.startswith("loop."):
        return LOG_STREAM
    if subject.startswith("work."):
        return WORK_STREAM
    raise ValueError(f"no ringloop stream stores subject {subject!r}")


def games_subject(config: str, purpose: str = "*") -> str:
    """``games.<board>.<n>p.<purpose>`` of a config (raises ValueError quoting a bad config)."""
    board, players = split_config(config)
    return f"games.{board}.{players}p.{purpose}"
