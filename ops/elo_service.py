"""RingRift's EloService API on the event log: writes append events, reads query the Elo read model.

Compatibility layer for code written against RingRift's ``app.training.elo_service``:
``get_elo_service()`` returns an object with ``init_elo_database``, ``register_models``,
``update_elo_after_match``, ``record_match_and_update``, ``get_leaderboard``,
``get_head_to_head``, ``get_match_history`` and ``get_rating_history`` (RingRift's
argument names and returned dict keys; ``board_type`` + ``num_players`` or ``config=``).

* Writes become events: a registration is ``ModelRegistered``, a result ``MatchCompleted``.
  Ratings change only through the ``EloUpdated`` the elo-rater emits; an update waits for
  it and returns the new ratings. Nothing here writes a rating table.
* Reads query the Elo projection's SQLite tables (``elo_ratings``, ``elo_history``,
  ``elo_matches``, ``elo_participants``), brought up to the end of the log first.
* The read model lives in memory, seeded from a copy of the state folder's
  ``projections.db`` and then following the log, so the service never writes that file
  (its owner is ``ringloop up`` or the commands that catch it up).
* The rater: the service runs an elo-rater in its own event loop on the first update, so
  updates work with no rater process. A second rater beside ``ringloop up``'s is safe: they
  share the durable ``elo-rater`` consumer and the rater's optimistic concurrency keeps
  the updates of a config serial. ``rater=False`` leaves rating to the running processes.
* RingRift's API is synchronous: ``EloService`` runs ``AsyncEloService`` (the core, for
  async callers) on a private event loop in a background thread.

This module is the compat layer's public face: every name of it is importable from here.
It lives in ``ops.elo_arguments`` (RingRift's arguments as config names, ranks and the
MatchCompleted of a result), ``ops.elo_models`` (the registered-models read model),
``ops.elo_core`` (``AsyncEloService``: the write path and the rater), ``ops.elo_queries``
(the read queries) and ``ops.elo_sync`` (the synchronous facade and module functions).
Imports run one way (arguments, models, queries <- core <- sync <- here): no cycle.
"""

from __future__ import annotations

from engine.rating import (
    K_FACTOR,
    PINNED_RATINGS,
)
from ops.elo_arguments import (
    BOARD_TYPES,
    MatchRefused,
    config_name,
    id_config_conflict,
    match_event,
    optional_config,
    positions_from_winner,
    ranks_from_positions,
)
from ops.elo_core import (
    AsyncEloService,
    default_settings,
)
from ops.elo_models import (
    MODELS,
    RegisteredModels,
    file_sha256,
)
from ops.elo_queries import (
    combined_leaderboard,
    current_elo_runner,
    display_names,
    head_to_head,
    leaderboard_entries,
    match_history,
    memory_copy,
    rated_matches,
    rating_entry,
    rating_history,
    resolve_keys,
    up_owns_projector,
)
from ops.elo_sync import (
    EloService,
    close_elo_services,
    get_elo_service,
    get_head_to_head,
    get_leaderboard,
    get_match_history,
    get_rating_history,
    init_elo_database,
    register_models,
    update_elo_after_match,
)

__all__ = [
    "AsyncEloService",
    "BOARD_TYPES",
    "EloService",
    "K_FACTOR",
    "MODELS",
    "MatchRefused",
    "PINNED_RATINGS",
    "RegisteredModels",
    "close_elo_services",
    "combined_leaderboard",
    "config_name",
    "current_elo_runner",
    "default_settings",
    "display_names",
    "file_sha256",
    "get_elo_service",
    "get_head_to_head",
    "get_leaderboard",
    "get_match_history",
    "get_rating_history",
    "head_to_head",
    "id_config_conflict",
    "init_elo_database",
    "leaderboard_entries",
    "match_event",
    "match_history",
    "memory_copy",
    "optional_config",
    "positions_from_winner",
    "ranks_from_positions",
    "rated_matches",
    "rating_entry",
    "rating_history",
    "register_models",
    "resolve_keys",
    "up_owns_projector",
    "update_elo_after_match",
]
