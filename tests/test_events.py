"""The catalogue and codec: golden files keep decoding, upcasting, strictness, schema export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events import (
    EVENT_TYPES,
    EventDecodeError,
    GameCompleted,
    MatchCompleted,
    decode,
    derive_event_id,
    encode,
)
from events.codec import upcast_match_completed_v1_v2
from events.schema import asyncapi, json_schemas

GOLDEN = Path(__file__).resolve().parents[1] / "events" / "golden"


def golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("*.json"))


def test_every_event_type_has_a_golden_file_at_its_current_version() -> None:
    names = {path.name for path in golden_files()}
    for cls in EVENT_TYPES:
        wire, version = cls.model_fields["type"].default, cls.model_fields["version"].default
        assert f"{wire}.v{version}.json" in names, cls.__name__


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: p.name)
def test_golden_file_decodes(path: Path) -> None:
    payload = json.loads(path.read_text())
    event = decode(path.read_bytes())
    assert event.type == payload["type"]
    if event.version == payload["version"]:
        assert json.loads(encode(event)) == payload  # round trip, field for field


def test_game_completed_v1_is_upcast_without_root_values() -> None:
    event = decode((GOLDEN / "game.completed.v1.json").read_bytes())
    assert isinstance(event, GameCompleted) and event.version == 2
    assert event.root_values is None and event.visits is not None


def test_game_completed_root_values_must_fit_the_moves() -> None:
    payload = json.loads((GOLDEN / "game.completed.v2.json").read_text())
    with pytest.raises(EventDecodeError, match="1 root_values for 2 moves"):
        decode(json.dumps({**payload, "root_values": [[0.1, -0.1]]}))
    with pytest.raises(EventDecodeError, match=r"root values \[0.5\] must be 2 numbers"):
        decode(json.dumps({**payload, "root_values": [[0.5], None]}))
    with pytest.raises(EventDecodeError, match="must be 2 numbers in"):
        decode(json.dumps({**payload, "root_values": [[1.5, -1.0], None]}))


def test_match_completed_v1_is_upcast_to_ranks() -> None:
    event = decode((GOLDEN / "match.completed.v1.json").read_bytes())
    assert isinstance(event, MatchCompleted) and event.version == 2
    assert {p.participant_id: p.rank for p in event.participants} == {"a": 2, "b": 1, "c": 2}
    draw = upcast_match_completed_v1_v2(
        {"type": "match.completed", "version": 1, "participants": ["x", "y"], "winner": None}
    )
    assert [p["rank"] for p in draw["participants"]] == [1, 1]


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "nope"}', "'nope'"),
        (b'{"type": "daemon.started", "version": 1, "daemon": "x", "surprise": 1}', "surprise"),
    ],
)
def test_bad_input_is_refused_with_a_message_quoting_it(data: bytes, fragment: str) -> None:
    with pytest.raises(EventDecodeError) as info:
        decode(data)
    assert fragment in str(info.value)
    assert data.decode()[:20] in str(info.value)


def test_cross_config_match_is_refused_at_write_time() -> None:
    with pytest.raises(ValueError, match="mixes configs"):
        MatchCompleted(
            config="square8_2p",
            match_id="x",
            participants=[
                {"participant_id": "m1", "rank": 1, "config": "hex8_2p"},
                {"participant_id": "m2", "rank": 2},
            ],
        )


def test_same_weights_under_two_names_is_one_participant() -> None:
    sha = "cd" * 32
    with pytest.raises(ValueError, match="twice"):
        MatchCompleted(
            config="square8_2p",
            match_id="x",
            participants=[
                {"participant_id": "m1", "rank": 1, "model_sha256": sha},
                {"participant_id": "alias", "rank": 2, "model_sha256": sha},
            ],
        )


def test_derived_ids_are_deterministic_and_keep_the_parent_time_prefix() -> None:
    parent = "01a21c7b-e27a-791d-8142-fa95aa057bbc"
    first, again, other = (derive_event_id(parent, t) for t in ("elo", "elo", "dlq"))
    assert first == again != other
    assert first[:13] == parent[:13]


def test_schema_export_covers_every_subject_and_payload() -> None:
    schemas = json_schemas()
    assert len(schemas) == len(EVENT_TYPES)
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in document["channels"].values()}
    assert "games.{board}.{players}.{purpose}" in addresses
    assert "loop.elo.updated.{config}" in addresses and "loop.dlq.{handler}" in addresses
    for name, message in document["components"]["messages"].items():
        ref = message["payload"]["$ref"].rsplit("/", 1)[1]
        assert ref in document["components"]["schemas"], name
    text = json.dumps(document)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in document["components"]["schemas"], ref
