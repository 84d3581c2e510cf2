"""`ringloop auth init`: least-privilege credentials for a state folder (ops.auth's roles)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path(".ringloop")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "auth", help="least privilege: a nats-server authorization block and a key per role"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    init = actions.add_parser(
        "init",
        help="write STATE/auth/authorization.conf and one nkey seed per role (kept on rerun)",
    )
    init.add_argument(
        "--state-dir",
        "--state",
        dest="state_dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="state folder (default ./.ringloop)",
    )
    init.add_argument(
        "--jwt",
        action="store_true",
        help="operator mode: an operator and account, and a <role>.creds user JWT per role",
    )
    init.set_defaults(func=run_init)
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)


def run_init(args: argparse.Namespace) -> int:
    from ops import auth

    state_dir: Path = args.state_dir
    if state_dir.exists() and not state_dir.is_dir():
        print(f"ringloop auth init: {str(state_dir)!r} is not a folder", file=sys.stderr)
        return 2
    try:
        written = auth.init(state_dir, jwt=args.jwt)
    except OSError as exc:
        print(f"ringloop auth init: cannot write {str(state_dir)!r}: {exc}", file=sys.stderr)
        return 2
    config, *credentials = written
    print(f"wrote {config} ({len(credentials)} roles: {', '.join(auth.roles())})")
    kind = "<role>.creds (user JWT and seed)" if args.jwt else "<role>.nk (nkey seed)"
    print(f"credentials (mode 0600): {auth.auth_dir(state_dir)}/{kind}")
    print(
        "`ringloop up` on this state folder starts its server with it; every process connects "
        "with its role's seed"
    )
    return 0
