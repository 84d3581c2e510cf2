"""Consumes selfplay GameCompleted; emits TrainingRequested naming the exact game range once a
config has enough new games, no training of it is running and no candidate awaits its decision.

Idempotent under redelivery (the request's ids derive from the triggering game's id and
a running training blocks a second one) and safe with several gates: the append expects
`loop.training.requested.<config>` unchanged since the pipeline view was read.
"""

from __future__ import annotations

from datetime import datetime

from events import Event, GameCompleted, Producer, TrainingRequested, derive_event_id
from events.catalogue import GameRange
from events.streams import GAMES_STREAM, games_subject
from handlers.feedback import knobs
from handlers.runtime import Append
from handlers.settings import LoopSettings
from projections.games import selfplay_rows, selfplay_since
from projections.pipeline import status
from projections.registry import config_row, current_best
from projections.tables import Row, Tables

NAME = "data-gate"


def requested_subject(config: str) -> str:
    return f"loop.training.requested.{config}"


def training_running(row: Row, now: datetime, timeout_s: float) -> bool:
    """A requested or started training that has not ended and is not older than the timeout."""
    if row["running_training_id"] is None:
        return False
    requested_at = row["last_requested_at"]
    if requested_at is None:
        return True
    return (now - datetime.fromisoformat(requested_at)).total_seconds() < timeout_s


def candidate_pending(registry: Tables, config: str, now: datetime, timeout_s: float) -> bool:
    """A trained model of the config still awaits its promotion decision.

    Training again before the decision would learn from the same data with the same
    parent (the candidate is not the best yet): wasted compute. A candidate older than the
    timeout no longer blocks (its evaluation was lost).
    """
    for row in registry.rows("registry_models"):
        if row["config"] != config or row["state"] != "candidate":
            continue
        registered = row["registered_at"]
        if (
            registered is None
            or (now - datetime.fromisoformat(registered)).total_seconds() < timeout_s
        ):
            return True
    return False


def training_window(
    games: Tables, config: str, settings: LoopSettings, next_generation: int
) -> GameRange:
    """The newest contiguous run of selfplay games the next training learns from.

    At most `training.window_games` games, none before the first game of a model more
    than `training.window_generations` generations older than the next one.
    """
    rows = selfplay_rows(games, config)
    oldest_generation = next_generation - settings.training.window_generations
    start = max(0, len(rows) - settings.training.window_games)
    while start < len(rows) - 1 and rows[start]["generation"] < oldest_generation:
        start += 1
    window = rows[start:]
    return GameRange(
        stream=GAMES_STREAM,
        subject=games_subject(config, "selfplay"),
        first_seq=window[0]["seq"],
        last_seq=window[-1]["seq"],
        count=len(window),
    )


def on_game_completed(
    event: Event,
    *,
    games: Tables,
    pipeline: Tables,
    registry: Tables,
    feedback: Tables,
    settings: LoopSettings,
    producer: Producer,
) -> Append | None:
    """Request a training of the game's config when its data gate opens."""
    if not isinstance(event, GameCompleted) or event.purpose != "selfplay":
        return None
    config = event.config
    if config not in settings.configs:
        return None
    row = status(pipeline, config)
    timeout_s = settings.data_gate.training_timeout_s
    if training_running(row, event.occurred_at, timeout_s):
        return None
    if candidate_pending(registry, config, event.occurred_at, timeout_s):
        return None
    new_games = selfplay_since(games, config, row["trained_through_seq"])
    if new_games < knobs(feedback, config, settings).min_new_games:
        return None
    best = current_best(registry, config)
    generation = config_row(registry, config)["generation"] + 1
    window = training_window(games, config, settings, generation)
    suffix = derive_event_id(event.event_id, "training-id").replace("-", "")[-12:]
    request = event.caused(
        TrainingRequested,
        "training-requested",
        producer=producer,
        config=config,
        training_id=f"{config}-g{generation}-{suffix}",
        games=window,
        parent_model_id=best["model_id"] if best else None,
        generation=generation,
    )
    return Append(
        [request],
        expected_last_seq=row["last_requested_seq"],
        expected_filter=requested_subject(config),
    )
