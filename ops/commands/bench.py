"""`ringloop bench <name>`: runs one benchmark module from ops.bench."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import ops.bench


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark (events, engine, learning)")
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for info in sorted(pkgutil.iter_modules(ops.bench.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"ops.bench.{info.name}")
        name = getattr(module, "NAME", None)
        if name is None:
            continue
        sub = benches.add_parser(name, help=getattr(module, "HELP", ""))
        sub.add_argument("--json", action="store_true", help="end with one JSON object line")
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
