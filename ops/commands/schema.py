"""`ringloop schema`: write JSON Schema for every event and the AsyncAPI 3 document."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from events.schema import asyncapi, json_schemas


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema", help="export the event catalogue (JSON Schema, AsyncAPI)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("schema"), help="output folder (default ./schema)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    (out / "events").mkdir(parents=True, exist_ok=True)
    schemas = json_schemas()
    for wire_type, schema in schemas.items():
        (out / "events" / f"{wire_type}.schema.json").write_text(
            json.dumps(schema, indent=2) + "\n"
        )
    (out / "asyncapi.json").write_text(json.dumps(asyncapi(), indent=2) + "\n")
    print(f"wrote {len(schemas)} event schemas to {out / 'events'} and {out / 'asyncapi.json'}")
    return 0
