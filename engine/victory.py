"""Victory conditions, the bare-board stalemate ladder and final ranking (R170-R179)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine import movegen as mg

if TYPE_CHECKING:
    from engine.state import GameState


def check_victory(s: GameState, *, full: bool) -> None:
    """Engine order: ring elimination, territory, early LPS, bare-board stalemate."""
    n = s.num_players
    for p in range(1, n + 1):
        if s._elim[p] >= s.victory_threshold:
            s._finish(p, "ring_elimination")
            return
    terr = s._terr
    total = sum(terr)
    for p in range(1, n + 1):
        if terr[p] >= s.territory_minimum and terr[p] > total - terr[p]:
            s._finish(p, "territory_control")
            return
    if full:
        _check_structural_end(s)


def _check_structural_end(s: GameState) -> None:
    n = s.num_players
    on_board = [0] * (n + 1)
    controllers: set[int] = set()
    for st in s._stacks:
        if st:
            controllers.add(st[0])
            for r in st:
                on_board[r] += 1
    if len(controllers) == 1:
        (only,) = controllers
        if all(on_board[q] + s._hand[q] == 0 for q in range(1, n + 1) if q != only):
            s._finish(only, "last_player_standing")
            return
    if controllers:
        return
    holders = [q for q in range(1, n + 1) if s._hand[q] > 0]
    if holders and any(mg.any_placement(s, q) for q in holders):
        return
    _resolve_stalemate(s)


def _resolve_stalemate(s: GameState) -> None:
    """Bare-board stalemate (R173): hands become eliminated rings, then the tie-break ladder."""
    n = s.num_players
    for q in range(1, n + 1):
        s._elim[q] += s._hand[q]
        s._elim_colour[q] += s._hand[q]
        s._hand[q] = 0
    markers = [0] * (n + 1)
    for m in s._markers:
        markers[m] += 1
    best = max(
        range(1, n + 1),
        key=lambda q: (s._terr[q], s._elim[q], markers[q], q == s.last_actor, -q),
    )
    s._finish(best, "stalemate_resolution")


def _score(s: GameState, q: int, markers: list[int]) -> tuple[int, int, int, int]:
    return (s._terr[q], s._elim[q], markers[q], s.elimination_turn[q])


def ranking(s: GameState) -> list[int]:
    """Rank per player (1 = best): winner first, then territory, eliminated rings, markers,
    later permanent elimination; full ties share a rank (competition numbering)."""
    n = s.num_players
    markers = [0] * (n + 1)
    for m in s._markers:
        markers[m] += 1
    keys = {}
    for q in range(1, n + 1):
        keys[q] = (1 if q == s.winner else 0, *_score(s, q, markers))
    ranks = []
    for q in range(1, n + 1):
        ranks.append(1 + sum(1 for p in range(1, n + 1) if keys[p] > keys[q]))
    return ranks
