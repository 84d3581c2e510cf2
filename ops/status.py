"""What `ringloop status` reports: streams, consumer lag, projection checkpoints, dead letters."""

from __future__ import annotations

from typing import Any

from nats.js.api import StreamInfo
from nats.js.errors import NotFoundError

from events import LOG_STREAM, HandlerFailed
from events.streams import LEASES_BUCKET, MODELS_BUCKET, SNAPSHOTS_BUCKET, STREAM_SUBJECTS
from ops.app import App
from projections.checkpoints import read_checkpoints

BUCKET_STREAMS = (f"KV_{LEASES_BUCKET}", f"OBJ_{MODELS_BUCKET}", f"OBJ_{SNAPSHOTS_BUCKET}")


async def collect_status(app: App, *, recent_dead_letters: int = 5) -> dict[str, Any]:
    js = app.store.js
    streams = []
    last_seqs: dict[str, int] = {}
    infos: dict[str, StreamInfo] = {}
    for name in STREAM_SUBJECTS:
        try:
            info = infos[name] = await js.stream_info(name)
        except NotFoundError:
            streams.append({"stream": name, "missing": True, "consumers": []})
            continue
        last_seqs[name] = int(info.state.last_seq)
        consumers = []
        for consumer in await js.consumers_info(name):
            consumers.append(
                {
                    "name": consumer.name,
                    "lag": consumer.num_pending,
                    "ack_pending": consumer.num_ack_pending,
                    "redelivered": consumer.num_redelivered,
                    "delivered_seq": consumer.delivered.stream_seq if consumer.delivered else 0,
                }
            )
        streams.append(
            {
                "stream": name,
                "messages": info.state.messages,
                "bytes": info.state.bytes,
                "first_seq": info.state.first_seq,
                "last_seq": info.state.last_seq,
                "consumers": [
                    c for c in consumers if not str(c["name"]).startswith(("OC_", "ordered"))
                ],
            }
        )
    cluster = await collect_cluster(app, infos)
    projections = [
        {
            "projection": row["projection"],
            "stream": row["stream"],
            "last_seq": row["last_seq"],
            "lag": last_seqs.get(row["stream"], 0) - row["last_seq"],
            "updated_at": row["updated_at"],
        }
        for row in read_checkpoints(app.settings.projections_db)
    ]
    return {
        "cluster": cluster,
        "streams": streams,
        "projections": projections,
        "dead_letters": await _dead_letters(app, recent_dead_letters),
    }


async def collect_cluster(app: App, known: dict[str, StreamInfo] | None = None) -> dict[str, Any]:
    """The server this process talks to, and per stream (buckets too) its replica count,
    leader and peers; `health` is "ok" when every stream has a leader and every peer is
    current, else "degraded" with the reasons. `known`: stream infos already fetched (a
    missing stream is asked again, so one created meanwhile is seen)."""
    nc = app.nc
    info = nc._server_info
    placements = []
    problems: list[str] = []
    for name in (*STREAM_SUBJECTS, *BUCKET_STREAMS):
        try:
            stream = (known or {}).get(name) or await app.store.js.stream_info(name)
        except NotFoundError:
            problems.append(f"{name} missing")
            continue
        placement = _placement(name, stream)
        placements.append(placement)
        problems += placement.pop("problems")
    connected = nc.connected_url
    return {
        "connected": connected.geturl() if connected else None,
        "server": info.get("server_name"),
        "cluster": info.get("cluster"),
        "known_servers": [url.geturl() for url in nc.servers],
        "streams": placements,
        "health": "ok" if not problems else "degraded",
        "problems": problems,
    }


def _placement(name: str, stream: StreamInfo) -> dict[str, Any]:
    replicas = int(stream.config.num_replicas or 1)
    cluster = stream.cluster
    peers = [
        {"name": peer.name, "current": bool(peer.current), "offline": bool(peer.offline),
         "lag": peer.lag or 0, "active_s": round((peer.active or 0) / 1e9, 3)}
        for peer in (cluster.replicas or [] if cluster else [])
    ]  # fmt: skip
    problems = []
    leader = cluster.leader if cluster else None
    if replicas > 1 and not leader:
        problems.append(f"{name} has no leader")
    for peer in peers:
        if not peer["current"] or peer["offline"]:
            state = "offline" if peer["offline"] else f"behind by {peer['lag']}"
            problems.append(f"{name} replica {peer['name']} {state}")
    return {"stream": name, "replicas": replicas, "leader": leader, "peers": peers,
            "problems": problems}  # fmt: skip


async def _dead_letters(app: App, recent: int) -> dict[str, Any]:
    try:
        stored = await app.store.read_all(LOG_STREAM, "loop.dlq.>")
    except NotFoundError:
        stored = []
    items = [s for s in stored if isinstance(s.event, HandlerFailed)]
    return {
        "count": len(items),
        "recent": [
            {
                "seq": s.seq,
                "handler": s.event.handler,  # type: ignore[attr-defined]
                "error_type": s.event.error_type,  # type: ignore[attr-defined]
                "error": s.event.error[:200],  # type: ignore[attr-defined]
                "input": f"{s.event.input_stream}#{s.event.input_seq}",  # type: ignore[attr-defined]
            }
            for s in items[-recent:]
        ],
    }


def render_cluster(cluster: dict[str, Any]) -> list[str]:
    where = f"server {cluster['server']}" + (
        f" of cluster {cluster['cluster']}" if cluster["cluster"] else " (no cluster)"
    )
    lines = [f"NATS  {cluster['connected']}  {where}  health {cluster['health']}"]
    lines += [f"  ! {problem}" for problem in cluster["problems"]]
    for placement in cluster["streams"]:
        peers = ", ".join(
            f"{p['name']} {'current' if p['current'] else 'lag ' + str(p['lag'])}"
            for p in placement["peers"]
        )
        lines.append(
            f"  {placement['stream']:<24} R{placement['replicas']}  leader "
            f"{placement['leader'] or '-'}" + (f"  peers {peers}" if peers else "")
        )
    return lines


def render_status(status: dict[str, Any]) -> str:
    lines = render_cluster(status["cluster"]) if "cluster" in status else []
    lines.append("STREAMS")
    for stream in status["streams"]:
        if stream.get("missing"):
            lines.append(f"  {stream['stream']:<16} missing (not set up: `ringloop up`)")
            continue
        lines.append(
            f"  {stream['stream']:<16} {stream['messages']:>9} msgs {stream['bytes']:>12} bytes  "
            f"seq {stream['first_seq']}..{stream['last_seq']}"
        )
        for consumer in stream["consumers"]:
            lines.append(
                f"    consumer {consumer['name']:<20} lag {consumer['lag']:>7}  "
                f"unacked {consumer['ack_pending']:>4}  redelivered {consumer['redelivered']}"
            )
    lines.append("PROJECTIONS")
    for projection in status["projections"] or [
        {"projection": "(none yet)", "last_seq": 0, "lag": 0, "stream": ""}
    ]:
        lines.append(
            f"  {projection['projection']:<16} at seq {projection['last_seq']:>9}  lag {projection['lag']:>7}  {projection['stream']}"
        )
    dead = status["dead_letters"]
    lines.append(f"DEAD LETTERS  {dead['count']}")
    for item in dead["recent"]:
        lines.append(
            f"  #{item['seq']} {item['handler']}: {item['error_type']}: {item['error']} (input {item['input']})"
        )
    return "\n".join(lines)
