"""`ringloop tournament` as a user runs it: the command and a `ringloop run evaluator`
process against the same nats-server; the printed crosstable is checked cell by cell against
the log's MatchCompleted events of that tournament."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys

from events import LOG_STREAM, MatchCompleted
from ops.app import App
from ops.settings import Settings

PARTICIPANTS = ["random", "heuristic", "mcts-4"]
GAMES = 2  # per pairing, seats rotating: 3 pairings, 6 games


def ringloop(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "ops", *args, "--nats", str(settings.nats.url),
            "--state-dir", str(settings.state_dir)]  # fmt: skip


async def test_tournament_with_an_evaluator_process_prints_the_logs_crosstable(
    app: App, settings: Settings
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    evaluator = subprocess.Popen(ringloop(settings, "run", "evaluator"), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        run = await asyncio.to_thread(
            subprocess.run,
            ringloop(settings, "tournament", "--config", "square8_2p", "--participants",
                     ",".join(PARTICIPANTS), "--games", str(GAMES), "--timeout", "400",
                     "--json"),
            capture_output=True, text=True, timeout=480, env=env,
        )  # fmt: skip
    finally:
        evaluator.send_signal(signal.SIGTERM)
        await asyncio.to_thread(evaluator.wait, 120)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    tournament_id = summary["tournament_id"]
    assert summary == {"tournament_id": tournament_id, "games": 6, "participants": PARTICIPANTS}
    assert lines[0] == f"tournament {tournament_id}: 6 games of square8_2p"

    stored = await app.store.read_all(LOG_STREAM, "loop.match.completed.square8_2p")
    matches = [s.event for s in stored
               if isinstance(s.event, MatchCompleted) and s.event.context_id == tournament_id]  # fmt: skip
    assert len(matches) == 6 and {m.context for m in matches} == {"tournament"}
    assert sorted(m.game_id for m in matches) == sorted(f"{tournament_id}:{i}" for i in range(6))
    score: dict[tuple[str, str], float] = collections.defaultdict(float)
    played: dict[tuple[str, str], int] = collections.defaultdict(int)
    for match in matches:
        [a, b] = match.participants
        for me, them in ((a, b), (b, a)):
            pair = (me.participant_id, them.participant_id)
            score[pair] += 0.5 if me.rank == them.rank else float(me.rank < them.rank)
            played[pair] += 1

    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert set(rows) == set(PARTICIPANTS), lines
    for me in PARTICIPANTS:
        cells = rows[me][1 : 1 + len(PARTICIPANTS)]
        for them, cell in zip(PARTICIPANTS, cells, strict=True):
            want = "-" if me == them else f"{score[me, them]:g}/{played[me, them]}"
            assert cell == want, (me, them, lines)
        total = sum(score[me, t] for t in PARTICIPANTS if t != me)
        games = sum(played[me, t] for t in PARTICIPANTS if t != me)
        assert games == 2 * GAMES
        assert rows[me][1 + len(PARTICIPANTS)] == f"{total / games:.3f}"
        assert rows[me][2 + len(PARTICIPANTS)] == str(games)
