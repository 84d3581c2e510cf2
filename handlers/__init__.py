"""What reacts to what: one line per stage, from the event it consumes to its handler.

| consumes          | handler (module)     | emits                          |
|-------------------|----------------------|--------------------------------|
| MatchCompleted    | elo_rater            | EloUpdated                     |

The composition root (ops.app) binds each handler to its dependencies and the runtime.
"""

REACTIONS: dict[str, str] = {
    "match.completed": "elo_rater.on_match_completed",
}
