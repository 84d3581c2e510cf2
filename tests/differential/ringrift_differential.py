"""Differential run: RingRift's TypeScript engine plays seeded random games
(ringrift_games.ts), ringloop replays them and compares, at every position, the legal move
sets and, after every move, the position (stacks, markers, collapsed cells, rings in hand,
eliminated rings) and whose turn and which phase it is.

    PYTHONPATH=. python tests/differential/ringrift_differential.py --ringrift DIR \\
        --config square8_2p --games 40 [--seed 1] [--json out.json]

Where the positions differ the replay adopts RingRift's board and goes on (the turn
bookkeeping stays ours), so one disagreement does not hide the ones after it; where whose
turn it is or the phase differs, or a move RingRift played is illegal here, the game's
comparison stops. Every disagreement is sorted into a kind, and KINDS names the rule that
decides each known kind and which engine it finds right.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import movegen as mg
from engine.config import GameConfig
from engine.move import (
    CHOOSE_LINE_OPTION,
    CHOOSE_TERRITORY_OPTION,
    ELIMINATE_RINGS,
    NO_TERRITORY_ACTION,
    PLACE_RING,
    PROCESS_LINE,
    RECOVERY_SLIDE,
    SKIP_TERRITORY,
    Move,
)
from engine.position import Position, differences, position_from_json, position_of
from engine.serialize import match_move, move_from_json
from engine.state import GameState, IllegalMoveError

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "ringrift_games.ts"

# (pattern of a kind, the rule that decides it, which engine it finds right). Kinds are the
# labels `classify_*` give; a kind no pattern matches is new and wants a look.
_RINGLOOP = "ringloop follows the rule; RingRift's engine departs from it"
KINDS: list[tuple[str, str, str]] = [
    (
        r"position after choose_territory_option: .*\(RingRift collapses more markers\)",
        "R145 step 2, COMPLETE_RULES §12.2: only the border markers that take part in a "
        "minimal blocking path collapse (engine/territory.py); RingRift also collapses every "
        "marker, of any colour, 8-connected to them",
        _RINGLOOP,
    ),
    (
        r"legal moves in territory_processing; only ringloop: choose_territory_option.*"
        r"\(regions sealed only by collapsed cells\)",
        "R141/R142: a region walled by collapsed cells and the edge is disconnected when it "
        "lacks an active colour; RingRift keeps such a region only if exactly one player is "
        "represented in it",
        _RINGLOOP,
    ),
    (
        r"after eliminate_rings_from_stack: ringloop to territory_processing, "
        r"RingRift to ring_placement|move illegal in ringloop: no_territory_action",
        "R141/R142 (follows from the kind above: ringloop still has a region to offer)",
        _RINGLOOP,
    ),
    (
        r"legal moves in line_processing; only ringloop: choose_line_option$"
        r"|move illegal in ringloop: process_line",
        "R120/R122: a line longer than lineLength offers Option 1 and every Option-2 window "
        "as explicit choices; RingRift offers a bare process_line (collapse all). A "
        "process_line played while a line reward is pending is the R123 kind below",
        _RINGLOOP,
    ),
    (
        r"legal moves in line_processing; only RingRift: choose_line_option$",
        "R123: a pending line-reward elimination is paid by the next move, before another "
        "line is processed; RingRift also offers the next line",
        _RINGLOOP,
    ),
    (
        r"legal moves in ring_placement; only ringloop: place_ring of 2-3 rings",
        "R081: 1-3 rings on an empty cell, no-dead-placement judged for the stack placed; "
        "RingRift judges (and offers) one ring only, so a cell where only a 2-3 ring stack "
        "can move is missing",
        _RINGLOOP,
    ),
    (
        r"after no_line_action: ringloop to territory_processing, RingRift to forced_elim",
        "R073/R075/R204: every phase is visited and recorded; territory_processing comes "
        "before forced_elimination (RULES_DIGEST §19 'line→FE route')",
        _RINGLOOP,
    ),
    (
        r"position after .*: eliminatedRings,ringsInHand \(game over by stalemate",
        "R173: at a bare-board stalemate every ring in hand becomes an eliminated ring of "
        "its owner; RingRift counts them for the tie-break without moving them",
        _RINGLOOP,
    ),
    (
        r"ringloop ends the game after .*, RingRift plays on .*; same winner",
        "R170/R171: victory is judged after the full turn; ringloop ends the game on the "
        "move that meets a condition, as RingRift's contract vectors near_victory_territory.* "
        "require (RULES_DIGEST §15 'Order'); the winner agrees",
        "RingRift's engine follows the rule text; ringloop follows the contract vectors",
    ),
]


def verdict_of(kind: str) -> tuple[str, str]:
    for pattern, rule, verdict in KINDS:
        if re.search(pattern, kind):
            return rule, verdict
    return "?", "unclassified"


@dataclass
class Tally:
    games: int = 0
    positions: int = 0  # positions whose legal move sets were compared
    moves: int = 0  # moves after which the positions were compared
    differ: Counter[str] = field(default_factory=Counter)  # kind -> positions
    examples: dict[str, str] = field(default_factory=dict)  # kind -> first example
    stopped: int = 0  # games whose comparison stopped early

    def note(self, kind: str, example: str) -> None:
        self.differ[kind] += 1
        self.examples.setdefault(kind, example)

    def merge(self, other: Tally) -> None:
        self.games += other.games
        self.positions += other.positions
        self.moves += other.moves
        self.differ.update(other.differ)
        for k, v in other.examples.items():
            self.examples.setdefault(k, v)
        self.stopped += other.stopped


def move_key(m: Move) -> tuple[Any, ...]:
    """What a legal move decides, so both engines' lists compare: a line or region by its
    cells (not the cell that names it), a placement by its cell (RingRift lists one
    placement per cell and leaves the ring count to the host)."""
    if m.type == PLACE_RING:
        return (m.type, m.player, m.to_cell)
    if m.type in (PROCESS_LINE, CHOOSE_LINE_OPTION):
        collapse = frozenset(m.collapse) if m.option == 2 else None
        return (CHOOSE_LINE_OPTION, m.player, frozenset(m.cells), f"o{m.option or 1}", collapse)
    if m.type == CHOOSE_TERRITORY_OPTION:
        return (m.type, m.player, frozenset(m.cells))
    if m.type == ELIMINATE_RINGS:
        return (m.type, m.player, m.to_cell)
    option = f"o{m.option}" if m.option else ""
    return (m.type, m.player, m.from_cell, m.to_cell, m.capture_target, option, m.mode)


def _show_key(key: tuple[Any, ...], s: GameState) -> str:
    g = s.geometry
    parts = [str(key[0])]
    for v in key[2:]:
        if isinstance(v, int):
            parts.append(g.key(v))
        elif isinstance(v, frozenset):
            parts.append("{" + " ".join(g.key(c) for c in sorted(v)) + "}")
        elif v:
            parts.append(str(v))
    return " ".join(parts)


def classify_legal(s: GameState, ours: set[tuple[Any, ...]], theirs: set[tuple[Any, ...]]) -> str:
    only_ours = sorted({k[0] for k in ours - theirs})
    only_theirs = sorted({k[0] for k in theirs - ours})
    label = f"legal moves in {s.phase}"
    if only_ours == [PLACE_RING] and not only_theirs:
        cells = {k[2] for k in ours - theirs}
        single = {m.to_cell for m in s.legal_moves() if m.type == PLACE_RING and m.count == 1}
        if not cells & single:
            return label + "; only ringloop: place_ring of 2-3 rings on an empty cell"
    if only_ours:
        label += f"; only ringloop: {','.join(only_ours)}"
    if only_theirs:
        label += f"; only RingRift: {','.join(only_theirs)}"
    regions = [k[2] for k in ours - theirs if k[0] == CHOOSE_TERRITORY_OPTION]
    if regions and set(only_theirs) <= {NO_TERRITORY_ACTION}:
        sealed = all(_sealed_by_collapsed(s, r) for r in regions)
        label += " (regions sealed only by collapsed cells)" if sealed else " (regions)"
    return label


def _sealed_by_collapsed(s: GameState, region: frozenset[int]) -> bool:
    around = s.geometry.territory_neighbors
    return all(s._collapsed[y] for c in region for y in around[c] if y not in region)


def classify_position(s: GameState, move: Move, found: list[str]) -> str:
    fields = sorted({f.split(" ", 1)[0].split("[", 1)[0] for f in found})
    label = f"position after {move.type}: {','.join(fields)}"
    if fields == ["eliminatedRings", "ringsInHand"] and s.is_over and not any(s._hand):
        return label + " (game over by stalemate; ringloop converts rings in hand)"
    board = [f for f in found if f.startswith(("marker ", "collapsed "))]
    if move.type == CHOOSE_TERRITORY_OPTION and board == found:
        more = all(
            (f.startswith("collapsed ") and f.endswith("ours none"))
            or (f.startswith("marker ") and ": record none," in f)
            for f in found
        )
        label += " (RingRift collapses more markers)" if more else " (ringloop collapses more)"
    return label


def classify_turn(played: Move, ours: tuple[Any, ...], theirs: tuple[Any, ...]) -> str:
    if ours[0] and not theirs[0]:
        return f"ringloop ends the game after {played.type}, RingRift plays on ({theirs[3]})"
    if theirs[0] and not ours[0]:
        return f"RingRift ends the game after {played.type}, ringloop plays on ({ours[3]})"
    if ours[0]:
        return "winner differs"
    return f"after {played.type}: ringloop to {ours[3]}, RingRift to {theirs[3]}"


def realign(s: GameState, after: dict[str, Any]) -> bool:
    """Where we are still in territory_processing and RingRift has left it (it skips the
    phase when it sees no region, or sees fewer regions), play our no_territory_action or
    skip_territory_processing; True when whose turn and the phase then agree."""
    for _ in range(2):
        if s.phase != "territory_processing":
            break
        leave = [m for m in s.legal_moves() if m.type in (NO_TERRITORY_ACTION, SKIP_TERRITORY)]
        if not leave:
            break
        s.apply(leave[0])
        if _turn_of(after) == _our_turn(s):
            return True
    return False


def _play(s: GameState, played: Move, recorded: Position, tally: Tally, where: str) -> bool:
    """Apply RingRift's move here. A move that leaves a choice open (a recovery slide names
    no extraction stack; RingRift's engine picks one) is played as the legal move that
    reaches RingRift's position. A move illegal here is tallied and, where one of our moves
    reaches RingRift's position, that one is played instead; False when none does."""
    try:
        move = match_move(s, played)
    except IllegalMoveError:
        tally.note(f"move illegal in ringloop: {played.type}", where)
        reaching = _move_reaching(s, recorded, s.legal_moves())
        if reaching is not None:
            s.apply(reaching)
        return reaching is not None
    if played.type == RECOVERY_SLIDE and played.extraction is None:
        same = [
            m
            for m in s.legal_moves()
            if m._replace(extraction=None) == move._replace(extraction=None)
        ]
        move = _move_reaching(s, recorded, same) or move
    s.apply(move)
    return True


def _move_reaching(s: GameState, theirs: Position, moves: list[Move]) -> Move | None:
    """The one of `moves` after which our position is RingRift's."""
    for m in moves:
        if position_of(s.play(m)) == theirs:
            return m
    return None


def adopt(s: GameState, theirs: Position) -> None:
    """Put RingRift's board and ring counts into `s`, keeping our turn bookkeeping."""
    n = s.num_players
    for c in range(s.geometry.num_cells):
        st = theirs.stacks.get(c, ())
        if s._stacks[c] != st:
            s._set_stack(c, st)
        mk = theirs.markers.get(c, 0)
        if s._markers[c] != mk:
            s._set_marker(c, mk)
        owner = theirs.collapsed.get(c, 0)
        if s._collapsed[c] != owner:
            if s._collapsed[c]:
                s._set_collapsed_raw(c, s._collapsed[c])  # xor the old key out
            s._collapsed[c] = 0
            if owner:
                s._set_collapsed_raw(c, owner)
    for p in range(1, n + 1):
        s._hand[p] = theirs.rings_in_hand[p - 1]
        s._elim[p] = theirs.eliminated[p - 1]
        s._terr[p] = sum(1 for o in s._collapsed if o == p)
        s._elim_colour[p] = max(0, s.rings_per_player - s._hand[p] - mg.own_rings_on_board(s, p))


def _turn_of(d: dict[str, Any]) -> tuple[Any, ...]:
    over = d.get("gameStatus") != "active"
    return (over, d.get("winner") if over else None, None if over else d.get("currentPlayer"),
            None if over else d.get("currentPhase"))  # fmt: skip


def _our_turn(s: GameState) -> tuple[Any, ...]:
    if s.is_over:
        return (True, s.winner, None, None)
    return (False, None, s.current_player, s.phase)


def compare_game(game: dict[str, Any]) -> Tally:
    """Replay one RingRift game here; tally what agrees and what does not."""
    tally = Tally(games=1)
    config = GameConfig(game["board"], int(game["numPlayers"]))
    s = GameState.initial(config, swap_rule=False)
    g = s.geometry
    where = f"{config.name} seed {game['seed']}"
    for i, step in enumerate(game["steps"]):
        theirs_moves = [move_from_json(d, g) for d in step["legal"]]
        ours = {move_key(m) for m in s.legal_moves()}
        theirs = {move_key(m) for m in theirs_moves}
        tally.positions += 1
        if ours != theirs:
            extra = sorted(_show_key(k, s) for k in ours - theirs)[:3]
            missing = sorted(_show_key(k, s) for k in theirs - ours)[:3]
            tally.note(
                classify_legal(s, ours, theirs),
                f"{where} move {i + 1}: only ringloop {extra}, only RingRift {missing}",
            )
        played = theirs_moves[step["choice"]]
        after = step["after"]
        recorded = position_from_json(after, g, s.num_players)
        if not _play(s, played, recorded, tally, f"{where} move {i + 1}"):
            tally.stopped += 1
            return tally
        tally.moves += 1
        found = differences(recorded, position_of(s), g)
        if found:
            tally.note(classify_position(s, played, found), f"{where} move {i + 1}: {found[:4]}")
            adopt(s, recorded)
        if _turn_of(after) != _our_turn(s):
            kind = classify_turn(played, _our_turn(s), _turn_of(after))
            if s.is_over and after.get("gameStatus") == "active":
                theirs_end = game["steps"][-1]["after"]
                same = theirs_end.get("gameStatus") != "active" and theirs_end["winner"] == s.winner
                kind += "; same winner when RingRift ends it" if same else "; other winner"
            tally.note(
                kind,
                f"{where} move {i + 1}: ringloop {_our_turn(s)}, RingRift {_turn_of(after)}",
            )
            if not realign(s, after):
                tally.stopped += 1
                return tally
    if game.get("error"):
        tally.note(f"RingRift host stopped: {game['error'].split(':')[0]}", where)
    return tally


def ringrift_games(
    ringrift: Path, config: GameConfig, seed: int, games: int, max_moves: int = 4000
) -> Iterator[dict[str, Any]]:
    """Run the TypeScript driver under tsx and yield its games."""
    tsx = ringrift / "node_modules" / ".bin" / "tsx"
    command = [str(tsx)] if tsx.exists() else ["npx", "--yes", "tsx"]
    args = [str(DRIVER), str(ringrift), config.board, str(config.num_players)]
    proc = subprocess.Popen(
        [*command, *args, str(seed), str(games), str(max_moves)],
        stdout=subprocess.PIPE,
        cwd=ringrift,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        yield json.loads(line)
    if proc.wait() != 0:
        raise RuntimeError(f"RingRift driver failed (exit {proc.returncode}): {command + args}")


def missing_prerequisites(ringrift: Path | None) -> str | None:
    """Why the differential cannot run here, or None."""
    if ringrift is None:
        return "set RINGRIFT_DIR to a checkout of synaptent/RingRift (with `npm install tsx zod`)"
    if not (ringrift / "src" / "shared" / "engine" / "index.ts").is_file():
        return f"RINGRIFT_DIR={ringrift} holds no src/shared/engine"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (ringrift / "node_modules" / ".bin" / "tsx").exists() and shutil.which("npx") is None:
        return f"no tsx under {ringrift}/node_modules (run `npm install tsx zod` there)"
    return None


def report(tallies: dict[str, Tally]) -> dict[str, Any]:
    total = Tally()
    for t in tallies.values():
        total.merge(t)
    kinds = []
    for kind, count in total.differ.most_common():
        rule, verdict = verdict_of(kind)
        kinds.append({"kind": kind, "positions": count, "rule": rule, "verdict": verdict,
                      "example": total.examples[kind]})  # fmt: skip
    return {
        "games": total.games,
        "positions_compared": total.positions,
        "moves_compared": total.moves,
        "positions_differing": sum(total.differ.values()),
        "games_stopped_early": total.stopped,
        "by_config": {
            name: {"games": t.games, "positions": t.positions, "differ": sum(t.differ.values())}
            for name, t in tallies.items()
        },
        "kinds": kinds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("RINGRIFT_DIR")
    parser.add_argument("--ringrift", type=Path, default=Path(default) if default else None)
    parser.add_argument("--config", action="append", required=True, help="e.g. square8_2p")
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-moves", type=int, default=4000)
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    why = missing_prerequisites(args.ringrift)
    if why:
        print(why, file=sys.stderr)
        return 2
    tallies: dict[str, Tally] = {}
    for name in args.config:
        config = GameConfig.parse(name)
        tally = tallies.setdefault(name, Tally())
        for game in ringrift_games(args.ringrift, config, args.seed, args.games, args.max_moves):
            tally.merge(compare_game(game))
    out = report(tallies)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
