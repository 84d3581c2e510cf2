"""What the dashboard and the metrics read from the read models: plain dicts, no I/O.

Every function takes the views it reads (projection name -> its `Tables` state, as this
process's runners hold them) and returns JSON-ready data. The ML fit (scipy) is the one
costly read; `rated_matches` is cheap and `ml_fit` runs where the caller chooses (a thread).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from events.config import split_config
from events.keys import rating_key
from projections import timeline
from projections.tables import Row, Tables

Views = Mapping[str, Tables]


def view_row(views: Views, projection: str, table: str, *key: Any) -> Row | None:
    """One row of a view's table (None when the view is not kept here or has no such row)."""
    state = views.get(projection)
    return state.get(table, *key) if state is not None else None


def _rows(views: Views, projection: str, table: str) -> list[Row]:
    state = views.get(projection)
    return list(state.rows(table)) if state is not None else []


def model_key(model: Row) -> str:
    """A registry model row's participant key in the Elo read model."""
    return rating_key(str(model["model_id"]), (model.get("artifact") or {}).get("sha256"))


def elo_of(views: Views, config: str, key: str) -> float | None:
    row = view_row(views, "elo", "elo_ratings", config, key)
    return float(row["elo"]) if row else None


def best_elo(views: Views, config: str) -> float | None:
    """The Elo of the config's current best model (None before the first promotion)."""
    best = (view_row(views, "registry", "registry_configs", config) or {}).get("best_model_id")
    model = view_row(views, "registry", "registry_models", best) if best else None
    return elo_of(views, config, model_key(model)) if model else None


# ------------------------------------------------------------ the overview


def overview(views: Views, configs: Sequence[str]) -> list[dict[str, Any]]:
    """One row per config: games, generation, best model and Elo, what runs, last decision."""
    rows = []
    for config in configs:
        games = view_row(views, "games", "games_configs", config) or {}
        registry = view_row(views, "registry", "registry_configs", config) or {}
        pipeline = view_row(views, "pipeline", "pipeline_configs", config) or {}
        rows.append({
            "config": config,
            "selfplay_games": games.get("selfplay") or 0, "eval_games": games.get("eval") or 0,
            "generation": registry.get("generation") or 0,
            "best_model": registry.get("best_model_id"), "best_elo": best_elo(views, config),
            "promotions": registry.get("promotions") or 0,
            "rejections": registry.get("rejections") or 0,
            "training": pipeline.get("running_training_id"),
            "evaluating": bool(pipeline.get("evaluating")),
            "last_decision": pipeline.get("last_decision"),
            "last_decision_model": pipeline.get("last_decision_model"),
            "last_decision_reason": pipeline.get("last_decision_reason"),
        })  # fmt: skip
    return rows


def selfplay_counts(views: Views, configs: Sequence[str]) -> dict[str, int]:
    return {
        c: (view_row(views, "games", "games_configs", c) or {}).get("selfplay") or 0
        for c in configs
    }


# ------------------------------------------------------------ ratings per generation


def models(views: Views, config: str) -> list[Row]:
    """The config's registry models in registration order."""
    rows = [m for m in _rows(views, "registry", "registry_models") if m["config"] == config]
    return sorted(rows, key=lambda m: (m["registered_seq"] or 0, m["model_id"]))


def rated_matches(views: Views, config: str) -> list[dict[str, int]]:
    """Every rated match of a config as participant key -> rank, in log order."""
    matches = [m for m in _rows(views, "elo", "elo_matches")
               if m["config"] == config and m["rated_seq"] is not None]  # fmt: skip
    matches.sort(key=lambda m: m["seq"])
    return [{p["participant"]: p["rank"] for p in m["participants"]} for m in matches]


def ml_fit(matches: list[dict[str, int]]) -> dict[str, dict[str, float]]:
    """Full-history maximum-likelihood ratings with 95% intervals (scipy: call off the loop)."""
    from engine.rating import ml_ratings

    return {key: {"rating": round(fit.rating, 1), "low": round(fit.low, 1),
                  "high": round(fit.high, 1), "games": fit.games}
            for key, fit in ml_ratings(matches).items()}  # fmt: skip


def ratings(views: Views, config: str, ml: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Per model (each generation's candidates and bests): Elo, ML rating and interval,
    state and decision; and the baselines' ratings for reference."""
    rows = []
    for model in models(views, config):
        key = model_key(model)
        fit = ml.get(key) or {}
        elo_row = view_row(views, "elo", "elo_ratings", config, key) or {}
        decision = model.get("decision") or {}
        rows.append({
            "model_id": model["model_id"], "generation": model["generation"],
            "state": model["state"], "parent": model["parent_model_id"], "key": key,
            "elo": elo_row.get("elo"), "games": elo_row.get("games") or 0,
            "ml": fit.get("rating"), "ml_low": fit.get("low"), "ml_high": fit.get("high"),
            "decision": decision.get("kind"), "reason": decision.get("reason"),
            "promoted": model.get("promoted_at") is not None,
        })  # fmt: skip
    baselines = []
    for row in _rows(views, "elo", "elo_ratings"):
        if row["config"] == config and not row["participant"].startswith("sha256:"):
            fit = ml.get(row["participant"]) or {}
            baselines.append({"participant": row["display_name"], "elo": row["elo"],
                              "ml": fit.get("rating"), "games": row["games"]})  # fmt: skip
    return {"models": rows, "baselines": sorted(baselines, key=lambda r: r["participant"])}


# ------------------------------------------------------------ training and throughput


def losses(views: Views, config: str) -> list[dict[str, Any]]:
    """Every training's per-epoch losses, in training order (one curve per model)."""
    return [{"model_id": m["model_id"], "generation": m["generation"],
             "epochs": [{"epoch": e["epoch"], "policy": e["policy_loss"], "value": e["value_loss"]}
                        for e in m["losses"] or []]}
            for m in models(views, config) if m["losses"]]  # fmt: skip


def throughput(views: Views, config: str, bucket_s: float = 60.0) -> dict[str, Any]:
    """Selfplay games/s per time bucket (from the games index) and each training's samples/s."""
    times = sorted(_epoch(r["time"]) for r in _rows(views, "games", "games_index")
                   if r["config"] == config and r["purpose"] == "selfplay")  # fmt: skip
    buckets: dict[float, int] = {}
    for moment in times:
        start = moment - moment % bucket_s
        buckets[start] = buckets.get(start, 0) + 1
    games = [
        {"t": start, "games_per_s": count / bucket_s} for start, count in sorted(buckets.items())
    ]
    trainings = [{"t": _epoch(r["time"]), "model_id": r["model_id"],
                  "samples_per_s": r["details"].get("samples_per_s"),
                  "samples": r["details"].get("samples")}
                 for r in timeline.entries(views["timeline"], config=config)
                 if r["kind"] == "training_completed"] if "timeline" in views else []  # fmt: skip
    return {"bucket_s": bucket_s, "games": games, "trainings": trainings}


def last_samples_per_s(views: Views, config: str) -> float | None:
    """Training throughput of the config's last training (None before one completed)."""
    if "timeline" not in views:
        return None
    row = timeline.last_of(views["timeline"], "training_completed", config)
    return row["details"].get("samples_per_s") if row else None


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# ------------------------------------------------------------ timeline, tasks, games


def timeline_rows(views: Views, config: str | None, limit: int) -> list[Row]:
    if "timeline" not in views:
        return []
    return timeline.entries(views["timeline"], config=config, limit=limit)


def dead_letters(views: Views, limit: int) -> dict[str, Any]:
    rows = [r for r in timeline_rows(views, None, 10**9) if r["kind"] == "dead_letter"]
    by_handler: dict[str, int] = {}
    for row in rows:
        handler = row["details"].get("handler", "?")
        by_handler[handler] = by_handler.get(handler, 0) + 1
    return {"count": len(rows), "by_handler": by_handler, "recent": rows[-limit:]}


def open_tasks(views: Views) -> list[Row]:
    """Tasks the coordinator announced as started and not yet finished."""
    rows = [t for t in _rows(views, "pipeline", "pipeline_tasks") if t["outcome"] is None]
    return sorted(rows, key=lambda t: t["started_seq"])


def games(views: Views, config: str, limit: int) -> list[Row]:
    """The config's newest stored games (any purpose), newest first."""
    rows = [g for g in _rows(views, "games", "games_index") if g["config"] == config]
    rows.sort(key=lambda g: g["seq"], reverse=True)
    return rows[:limit]


def known_config(configs: Sequence[str], config: str) -> str:
    """`config` if it names a board x players (ValueError quoting it otherwise)."""
    if config not in configs:
        split_config(config)  # raises naming a malformed name
    return config
