"""The read-only commands as a user runs them, in-process against a real nats-server:
`replay --until-time` (the state as of a moment), `tail --from-seq` and `--json`, and the
dead letters `status` shows. Each test appends what it reads and checks it against the log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from events import LOG_STREAM, HandlerFailed, MatchCompleted
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.cli import main
from ops.settings import Settings
from projections.eventstore import StoredEvent


def cli(settings: Settings, *args: str) -> list[str]:
    return [*args, "--nats", str(settings.nats.url), "--state-dir", str(settings.state_dir)]


async def run_cli(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


def matches(tag: str, count: int) -> list[MatchCompleted]:
    return [
        MatchCompleted(config="square8_2p", match_id=f"{tag}-{i}",
                       participants=[{"participant_id": "a", "rank": 1 + i % 2},
                                     {"participant_id": "b", "rank": 2 - i % 2}])
        for i in range(count)
    ]  # fmt: skip


async def stored(app: App, seqs: list[int]) -> list[StoredEvent]:
    events = await app.store.read_all(LOG_STREAM, start_seq=seqs[0])
    return [s for s in events if s.seq in seqs]


def last_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def test_replay_until_time_is_the_state_as_of_that_moment(
    app: App, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await app.store.append_many(matches("early", 4))
    [moment] = await stored(app, [before[-1]])
    await app.store.append_many(matches("late", 3))

    def replay(name: str, *until: str) -> list[str]:
        out = tmp_path / f"{name}.db"
        return cli(settings, "replay", "--projection", "elo", "--out", str(out), *until, "--json")

    assert await run_cli(replay("as-of-time", "--until-time", moment.time.isoformat())) == 0
    [as_of_time] = last_json(capsys)["projections"]
    assert await run_cli(replay("as-of-seq", "--until-seq", str(before[-1]))) == 0
    [as_of_seq] = last_json(capsys)["projections"]
    assert await run_cli(replay("now")) == 0
    [now] = last_json(capsys)["projections"]
    assert as_of_time == as_of_seq and as_of_time["position"] == before[-1]
    assert now["rows"]["elo_matches"] == as_of_time["rows"]["elo_matches"] + 3
    # a Z suffix is UTC; a time before the first event gives the empty state
    assert await run_cli(replay("before", "--until-time", "2000-01-01T00:00:00Z")) == 0
    [empty] = last_json(capsys)["projections"]
    assert empty["position"] == 0 and empty["rows"].get("elo_matches", 0) == 0


@pytest.mark.parametrize(
    ("given", "message"),
    [("yesterday", "not an ISO 8601 time: 'yesterday'"),
     ("2026-12-01T10:00:00", "give a timezone (e.g. Z) in '2026-12-01T10:00:00'")],
)  # fmt: skip
def test_replay_until_time_refuses_a_bad_time_quoting_it(
    settings: Settings, given: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(cli(settings, "replay", "--until-time", given))
    assert exit_.value.code == 2 and message in capsys.readouterr().err


async def test_tail_from_seq_prints_from_that_sequence_and_json_prints_each_event_whole(
    app: App, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    seqs = await app.store.append_many(matches("tail", 5))
    start = seqs[1]  # the second of them: the first must not be printed
    argv = cli(settings, "tail", "loop.match.>", "--from-seq", str(start), "--count", "3")
    assert await run_cli([*argv, "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    expected = await stored(app, seqs[1:4])
    assert [p["event_id"] for p in printed] == [str(s.event.event_id) for s in expected]
    assert [p["match_id"] for p in printed] == ["tail-1", "tail-2", "tail-3"]
    assert printed[0] == json.loads(expected[0].event.model_dump_json())
    assert await run_cli(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [int(line.split()[0]) for line in lines] == seqs[1:4]
    assert all("match.completed" in line and "square8_2p" in line for line in lines)


@pytest.mark.parametrize("given", ["0", "-3"])
def test_tail_refuses_a_sequence_below_one_quoting_it(
    settings: Settings, given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(cli(settings, "tail", "loop.>", "--from-seq", given))
    assert exit_.value.code == 2
    assert f"a stream sequence is 1 or more, got '{given}'" in capsys.readouterr().err


async def test_status_shows_a_real_dead_letter_with_its_handler_error_and_input(
    app: App, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli(cli(settings, "status", "--json")) == 0
    before = json.loads(capsys.readouterr().out)["dead_letters"]["count"]
    rater = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    rating = asyncio.create_task(rater.run())
    try:
        ack = await app.store.js.publish(
            "loop.match.completed.square8_2p", b'{"type": "match.completed", "oops": 1}'
        )
        failed = await asyncio.wait_for(dead_letter_of(app, ack.seq), 60)
    finally:
        rater.stop()
        await rating
    assert await run_cli(cli(settings, "status", "--json")) == 0
    dead = json.loads(capsys.readouterr().out)["dead_letters"]
    assert dead["count"] == before + 1
    assert dead["recent"][-1] == {
        "seq": failed.seq,
        "handler": "elo-rater",
        "error_type": "EventDecodeError",
        "error": failed.event.error[:200],  # type: ignore[attr-defined]
        "input": f"{LOG_STREAM}#{ack.seq}",
    }
    assert await run_cli(cli(settings, "status")) == 0
    text = capsys.readouterr().out
    assert f"DEAD LETTERS  {before + 1}" in text
    assert f"  #{failed.seq} elo-rater: EventDecodeError: " in text
    assert f"(input {LOG_STREAM}#{ack.seq})" in text


async def dead_letter_of(app: App, input_seq: int) -> StoredEvent:
    while True:
        for entry in await app.store.read_all(LOG_STREAM, "loop.dlq.elo-rater"):
            if isinstance(entry.event, HandlerFailed) and entry.event.input_seq == input_seq:
                return entry
        await asyncio.sleep(0.05)
