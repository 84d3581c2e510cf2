"""Who can sit in a rated game besides models: the baseline tiers every config rates against."""

from __future__ import annotations

# Pinned in every config's ratings (random 400, heuristic 1200) and played by every gate.
BASELINES = ("random", "heuristic")
