"""The live progress view of `ringloop up`: games/s, generation, last decision, best Elo.

On a terminal the view redraws in place (the previous frame is erased); elsewhere (a log
file, a pipe) each frame is printed as plain lines. Decision reasons are shown whole,
wrapped to the terminal's width.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from events.keys import rating_key
from ops.app import App


@dataclass
class Progress:
    """Read-model snapshots over time; rates come from the difference of two snapshots."""

    started: float = field(default_factory=time.monotonic)
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_time: float = field(default_factory=time.monotonic)
    decisions_at_start: int | None = None
    profile: str | None = None

    def snapshot(self, app: App) -> dict[str, dict[str, Any]]:
        games = app.runners["games"].state
        registry = app.runners["registry"].state
        pipeline = app.runners["pipeline"].state
        elo = app.runners["elo"].state
        rows: dict[str, dict[str, Any]] = {}
        for config in app.settings.loop.configs:
            counts = games.get("games_configs", config) or {}
            reg = registry.get("registry_configs", config) or {}
            pipe = pipeline.get("pipeline_configs", config) or {}
            best = reg.get("best_model_id")
            rows[config] = {
                "selfplay_games": counts.get("selfplay", 0) or 0,
                "generation": reg.get("generation", 0) or 0,
                "best": best,
                "best_elo": _best_elo(registry, elo, config, best),
                "decisions": (reg.get("promotions") or 0) + (reg.get("rejections") or 0),
                "last_decision": pipe.get("last_decision"),
                "last_reason": pipe.get("last_decision_reason"),
                "training": pipe.get("running_training_id"),
            }
        return rows

    def decisions(self, rows: dict[str, dict[str, Any]]) -> int:
        """Promotion decisions made since this view started."""
        total = sum(row["decisions"] for row in rows.values())
        if self.decisions_at_start is None:
            self.decisions_at_start = total
        return total - self.decisions_at_start

    def render(self, rows: dict[str, dict[str, Any]]) -> str:
        now = time.monotonic()
        elapsed = max(now - self.last_time, 1e-6)
        profile = f"profile {self.profile}" if self.profile else "settings file / defaults"
        lines = [f"ringloop up ({profile}) — {now - self.started:6.0f}s"]
        width = max(60, shutil.get_terminal_size((120, 24)).columns)
        for config, row in rows.items():
            before = self.last.get(config, row)
            rate = (row["selfplay_games"] - before["selfplay_games"]) / elapsed
            decision = (
                f"{row['last_decision']}: {row['last_reason']}"
                if row["last_decision"]
                else "none yet"
            )
            elo = f"{row['best_elo']:.0f}" if row["best_elo"] is not None else "—"
            lines.append(
                f"  {config:<13} games {row['selfplay_games']:>6} ({rate:5.2f}/s)  gen {row['generation']:>3}  "
                f"best {row['best'] or '—'} (Elo {elo})  {'training ' + row['training'] if row['training'] else ''}"
            )
            lines += textwrap.wrap(f"last decision {decision}", width, initial_indent=" " * 16,
                                   subsequent_indent=" " * 18)  # fmt: skip
        self.last, self.last_time = rows, now
        return "\n".join(lines)


def _best_elo(registry: Any, elo: Any, config: str, best: str | None) -> float | None:
    if best is None:
        return None
    model = registry.get("registry_models", best) or {}
    key = rating_key(best, (model.get("artifact") or {}).get("sha256"))
    row = elo.get("elo_ratings", config, key)
    return float(row["elo"]) if row else None


class Frames:
    """Writes progress frames: in place on a terminal, as plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.in_place = stream.isatty()
        self._height = 0

    def show(self, text: str) -> None:
        if self.in_place and self._height:
            self.stream.write(f"\x1b[{self._height}F\x1b[J")  # up to the frame's start, erase
        self.stream.write(text + "\n")
        self.stream.flush()
        self._height = text.count("\n") + 1

    def release(self) -> None:
        """Later output goes below the last frame instead of over it."""
        self._height = 0
