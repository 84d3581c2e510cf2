"""The catalogue exported for other languages: JSON Schema per event and an AsyncAPI 3 document."""

from __future__ import annotations

from typing import Any

from events.catalogue import EVENT_TYPES, EvalGameRequested, GameCompleted, HandlerFailed
from events.config import CONFIG_PATTERN
from events.envelope import Event

REF = "#/components/schemas/{model}"


def channel_address(cls: type[Event]) -> tuple[str, dict[str, Any]]:
    """The subject template of an event type and its parameters."""
    if cls is GameCompleted:
        return "games.{board}.{players}.{purpose}", {
            "board": {"enum": ["square8", "hex8", "square19", "hexagonal"]},
            "players": {"enum": ["2p", "3p", "4p"]},
            "purpose": {"enum": ["selfplay", "eval", "import"]},
        }
    if cls is EvalGameRequested:
        return "work.eval.{config}", {
            "config": {"description": f"board × players, {CONFIG_PATTERN}"}
        }
    if cls is HandlerFailed:
        return "loop.dlq.{handler}", {"handler": {"description": "the handler that gave up"}}
    address = f"loop.{cls.domain}.{cls.subject_name}"
    if "config" in cls.model_fields:
        return address + ".{config}", {
            "config": {"description": f"board × players, {CONFIG_PATTERN}"}
        }
    return address, {}


def json_schemas() -> dict[str, Any]:
    """One JSON Schema (draft 2020-12) per event type, keyed by wire type."""
    return {cls.model_fields["type"].default: cls.model_json_schema() for cls in EVENT_TYPES}


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document naming every subject and payload of the catalogue."""
    schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for cls in EVENT_TYPES:
        name = cls.__name__
        schema = cls.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
        wire_type = cls.model_fields["type"].default
        version = cls.model_fields["version"].default
        messages[name] = {
            "name": name,
            "title": f"{wire_type} v{version}",
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else wire_type,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {"type": "string", "description": "the event_id (dedupe)"}
                },
            },
            "payload": {"$ref": REF.format(model=name)},
        }
        address, parameters = channel_address(cls)
        channel = {
            "address": address,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        if parameters:
            channel["parameters"] = parameters
        channels[name] = channel
        operations[f"receive{name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ringloop events",
            "version": "1.0.0",
            "description": "Every state change of the ringloop training loop, on NATS JetStream "
            "(streams RINGLOOP_GAMES for games.>, RINGLOOP_LOG for loop.>, RINGLOOP_WORK for work.>).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {"host": "127.0.0.1:4222", "protocol": "nats", "description": "ringloop up"}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
