"""`ringloop explain model <id>`: the causal chain behind a model, read from the log."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app
from ops.explain import UnknownModel, explain_model, render


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("explain", help="explain how a model came to be")
    parser.add_argument("kind", choices=["model"])
    parser.add_argument("model_id")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        try:
            explanation = await explain_model(app.store, args.model_id)
        except UnknownModel as exc:
            print(f"ringloop: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(explanation.as_dict(), indent=2, default=str))
        else:
            print(render(explanation))
        return 0

    return run_with_app(args, body, setup=False)  # read-only: never changes a stream
