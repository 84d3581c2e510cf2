"""The one codec: bytes off the bus → a typed event (upcasting old versions), and back."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from events.catalogue import EVENT_TYPES
from events.envelope import Event

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class EventDecodeError(ValueError):
    """Raised for bytes that are not a valid ringloop event; the message quotes the input."""

    def __init__(self, data: bytes | str, reason: str) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        excerpt = text if len(text) <= 300 else text[:300] + "…"
        super().__init__(f"cannot decode event {excerpt!r}: {reason}")
        self.excerpt = excerpt
        self.reason = reason


def upcast_match_completed_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """MatchCompleted v1 named a winner among plain participant ids; v2 ranks everyone.

    The winner gets rank 1 and the others share rank 2; no winner means a draw (all rank 1).
    """
    upgraded = {k: v for k, v in payload.items() if k not in ("participants", "winner")}
    winner = payload.get("winner")
    upgraded["participants"] = [
        {"participant_id": pid, "rank": 1 if winner in (None, pid) else 2}
        for pid in payload["participants"]
    ]
    upgraded["version"] = 2
    return upgraded


def upcast_game_completed_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """GameCompleted v2 adds the search's root values; a v1 record has none (null)."""
    return {**payload, "version": 2, "root_values": None}


def upcast_evaluation_started_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """EvaluationStarted v2 lists the gating games published per opponent; v1 gates were
    played inside one evaluator and published none."""
    return {**payload, "version": 2, "games": {}}


def upcast_eval_game_requested_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """EvalGameRequested v2 says whether the game gates a candidate; v1 items were
    tournament games."""
    return {**payload, "version": 2, "context": "tournament"}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("evaluation.started", 1): upcast_evaluation_started_v1_v2,
    ("eval_game.requested", 1): upcast_eval_game_requested_v1_v2,
    ("match.completed", 1): upcast_match_completed_v1_v2,
    ("game.completed", 1): upcast_game_completed_v1_v2,
}


@cache
def _adapter() -> TypeAdapter[Any]:
    union = Annotated[Union[EVENT_TYPES], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(union)


def encode(event: Event) -> bytes:
    return event.__pydantic_serializer__.to_json(event)


def upcast(payload: dict[str, Any]) -> dict[str, Any]:
    """Apply upcasters until the payload reaches its current version."""
    key = (payload.get("type"), payload.get("version"))
    while _upcastable(key):
        payload = UPCASTERS[key](payload)  # type: ignore[index]
        key = (payload.get("type"), payload.get("version"))
    return payload


def _upcastable(key: tuple[Any, Any]) -> bool:
    try:
        return key in UPCASTERS
    except TypeError:  # a type or version that is a list or object: nothing to upcast
        return False


def decode(data: bytes | str) -> Event:
    """Decode one event. Current versions take pydantic's fast JSON path."""
    try:
        return _adapter().validate_json(data)  # type: ignore[no-any-return]
    except ValidationError as fast_error:
        error: ValidationError = fast_error
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise EventDecodeError(data, f"not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise EventDecodeError(data, "not a JSON object")
    upgraded = upcast(payload)
    if upgraded is not payload:
        try:
            return _adapter().validate_python(upgraded)  # type: ignore[no-any-return]
        except ValidationError as exc:
            error = exc
    raise EventDecodeError(data, _summarise(error))


def decode_on(subject: str, data: bytes | str) -> Event:
    """Decode an event delivered on `subject`, refusing one that belongs on another subject
    (a valid event published where its consumers would misread it)."""
    event = decode(data)
    expected = event.subject()
    if expected != subject:
        raise EventDecodeError(
            data, f"a {event.type} event belongs on {expected!r}, not on {subject!r}"
        )
    return event


def decode_python(payload: dict[str, Any]) -> Event:
    return decode(json.dumps(payload))


def _summarise(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
