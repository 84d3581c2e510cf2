"""`ringloop cluster up --nodes 3` / `cluster down`: a JetStream cluster on loopback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ops.logging import configure_logging

DEFAULT_STATE = Path(".ringloop/cluster")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cluster", help="a JetStream cluster of nats-servers on loopback (up / down)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start the nodes (again) and print their URLs")
    up.add_argument("--nodes", type=int, default=3, help="number of servers (default 3)")
    down = actions.add_parser("down", help="stop the nodes (their stores are kept)")
    for action in (up, down):
        action.add_argument(
            "--state", type=Path, default=DEFAULT_STATE, help=f"folder (default {DEFAULT_STATE})"
        )
        action.add_argument("--log-level", default="warning")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ops.cluster import LoopbackCluster
    from ops.server import ServerError

    configure_logging(args.log_level)
    try:
        if args.action == "down":
            cluster = LoopbackCluster.load(args.state)
            if cluster is None:
                print(f"ringloop cluster: no cluster recorded in {args.state}", file=sys.stderr)
                return 1
            stopped = [node.name for node in cluster.running()]
            cluster.stop()
            print(f"ringloop cluster: stopped {', '.join(stopped) or 'nothing (none ran)'}")
            return 0
        cluster = LoopbackCluster.create(args.state, args.nodes)
        cluster.start()
    except (ServerError, ValueError, OSError) as exc:
        print(f"ringloop cluster: {exc}", file=sys.stderr)
        return 2
    print(cluster.url)
    print(
        f"ringloop cluster: {len(cluster.nodes)} nodes up, stores in {args.state}; "
        f"run the loop with: ringloop up --nats {cluster.url} --replicas "
        f"{min(3, len(cluster.nodes))}",
        file=sys.stderr,
    )
    return 0
