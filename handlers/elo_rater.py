"""Consumes MatchCompleted; emits EloUpdated, appended only if no other rater moved the config."""

from __future__ import annotations

from engine.rating import DEFAULT_RATING, K_FACTOR, PINNED_RATINGS, elo_update
from events import EloUpdated, Event, MatchCompleted, Producer, RatingChange
from handlers.runtime import Append
from projections.tables import Tables

NAME = "elo-rater"


def elo_subject(config: str) -> str:
    return f"loop.elo.updated.{config}"


def current_rating(view: Tables, config: str, key: str) -> float:
    if key in PINNED_RATINGS:
        return PINNED_RATINGS[key]
    row = view.get("elo_ratings", config, key)
    return float(row["elo"]) if row is not None else DEFAULT_RATING


def on_match_completed(
    event: Event, *, elo: Tables, producer: Producer, k: float = K_FACTOR
) -> Append | None:
    """Rate one match from the Elo read model as of its latest update for the config.

    The append expects the config's last EloUpdated sequence to be the one this decision
    read; a concurrent rater makes it conflict, and the runtime re-reads and retries.
    """
    if not isinstance(event, MatchCompleted):
        return None
    config = event.config
    match_row = elo.get("elo_matches", config, event.match_id)
    if match_row is not None and match_row["rated_seq"] is not None:
        return None  # already rated: a redelivery or a second copy of the match
    ranks = {p.key: p.rank for p in event.participants}
    before = {key: current_rating(elo, config, key) for key in ranks}
    after = elo_update(before, ranks, k=k)
    changes = [
        RatingChange(participant_id=key, before=before[key], after=after[key], rank=ranks[key])
        for key in ranks
    ]
    state = elo.get("elo_config_state", config)
    updated = event.caused(
        EloUpdated,
        "elo",
        producer=producer,
        config=config,
        match_id=event.match_id,
        changes=changes,
        k_factor=k,
    )
    return Append(
        [updated],
        expected_last_seq=state["last_elo_seq"] if state else 0,
        expected_filter=elo_subject(config),
    )
