"""Least privilege on the bus: one role per handler stage (plus the loop, tools and admin), each
allowed to publish only the subjects it emits; `ringloop auth init` writes the nats-server
authorization block and one nkey seed per role, and every process connects with its role's.

What a role may publish is derived, not spelled out: its events' subjects from
`events.subjects`, its durable consumers (create, fetch, ack) from `ops.wiring`'s reactions,
its lease keys and buckets from the streams table. Every role may read (stream and consumer
info, message gets, ephemeral ordered consumers and their flow control) and receives replies
only on its own inbox prefix (`_INBOX_<role>`), so no role reads another's replies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nkeys

from events import (
    CurriculumRebalanced,
    DaemonHeartbeat,
    DaemonStarted,
    DaemonStopped,
    EloUpdated,
    EvalGameRequested,
    EvaluationCompleted,
    EvaluationStarted,
    Event,
    FeedbackSignalRaised,
    MatchCompleted,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    ModelRolledBack,
    TaskFinished,
    TaskRefused,
    TaskStarted,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
    TrainingStarted,
)
from events.streams import (
    GAMES_STREAM,
    LEASES_BUCKET,
    LOG_STREAM,
    MODELS_BUCKET,
    SNAPSHOTS_BUCKET,
    WORK_STREAM,
)
from events.subjects import subject_filters
from ops.settings import Settings

AUTH_DIR = "auth"
CONFIG_FILE = "authorization.conf"
LOOP_ROLE = "loop"  # `ringloop up`: setup, the projector, the light stages it runs inline
PROJECTOR_ROLE = "projector"  # `ringloop run projector`: reads, writes the views' snapshots
TOOLS_ROLE = "tools"  # status, tail, replay, leaderboard, explain: read-only
ADMIN_ROLE = "admin"  # import-elo-db, tournament, operators: everything
SETUP_ROLES = (LOOP_ROLE, ADMIN_ROLE)
JWT_OPERATOR, JWT_ACCOUNT, JWT_SYSTEM = (
    "operator",
    "account",
    "system",
)  # --jwt mode's keys  # the roles that create and update streams and buckets
HEAVY_STAGES = ("selfplay", "trainer", "evaluator")  # `up` runs them as children, own roles
JS_API = "$JS.API"


class AuthError(ValueError):
    """A role or an auth folder that cannot be used; the message names it."""


# What each stage emits beyond DaemonStarted/Stopped and its dead letters: event classes, and
# for GameCompleted the purpose token its games carry. Tasks: the slot type it leases.
STAGE_EVENTS: dict[str, tuple[type[Event], ...]] = {
    "selfplay": (DaemonHeartbeat, TaskStarted, TaskFinished, TaskRefused),
    "trainer": (TrainingStarted, TrainingCompleted, TrainingFailed, ModelRegistered,
                TaskStarted, TaskFinished, TaskRefused),
    "evaluator": (MatchCompleted,),
    "gating": (EvaluationStarted, EvalGameRequested, EvaluationCompleted),
    "promoter": (ModelPromoted, ModelRejected, ModelRolledBack),
    "elo-rater": (EloUpdated,),
    "data-gate": (TrainingRequested,),
    "curriculum": (CurriculumRebalanced,),
    "feedback": (FeedbackSignalRaised,),
    "coordinator": (TaskFinished,),
}  # fmt: skip
GAME_PURPOSES: dict[str, str] = {"selfplay": "selfplay", "evaluator": "eval"}
TASK_TYPES: dict[str, str] = {"selfplay": "selfplay", "trainer": "training"}
# Stores checkpoints in the models Object Store. Replacing an object (a redelivered training
# stores its checkpoint again) purges the old chunks, and a purge request's subject filter
# travels in its body, so the writer may purge the whole bucket: a known limitation.
MODEL_WRITERS = ("trainer",)


@dataclass(frozen=True)
class Permissions:
    """What a role may publish (allow minus deny) and subscribe to."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()


def roles() -> list[str]:
    """Every role: each stage of handlers.REACTIONS, then the loop, the projector, tools and
    admin."""
    return [*STAGE_EVENTS, LOOP_ROLE, PROJECTOR_ROLE, TOOLS_ROLE, ADMIN_ROLE]


def inbox_prefix(role: str) -> str:
    return f"_INBOX_{role}"


# ------------------------------------------------------------------ permissions


def read_subjects() -> list[str]:
    """What every role may request: information, message gets, ephemeral (ordered) consumers
    with their flow control. None of it changes a stream or another consumer."""
    return [
        f"{JS_API}.INFO",
        f"{JS_API}.STREAM.INFO.*",
        f"{JS_API}.STREAM.NAMES",
        f"{JS_API}.STREAM.LIST",
        f"{JS_API}.STREAM.MSG.GET.*",
        f"{JS_API}.DIRECT.GET.*",
        f"{JS_API}.DIRECT.GET.*.>",
        f"{JS_API}.CONSUMER.INFO.*.*",
        f"{JS_API}.CONSUMER.NAMES.*",
        f"{JS_API}.CONSUMER.LIST.*",
        f"{JS_API}.CONSUMER.CREATE.*",  # no name token: the server refuses a durable here
        "$JS.FC.>",
    ]


def event_subjects(stage: str) -> list[str]:
    """The subjects of the events a stage appends (its dead letters and daemon events too)."""
    subjects = [f"loop.dlq.{stage}"]
    emitted: tuple[type[Event], ...] = (DaemonStarted, DaemonStopped, *STAGE_EVENTS[stage])
    for event_cls in emitted:
        subjects += subject_filters(event_cls)
    if stage in GAME_PURPOSES:
        subjects.append(f"games.*.*.{GAME_PURPOSES[stage]}")
    return sorted(set(subjects))


def consumer_subjects(stream: str, consumer: str) -> list[str]:
    """Create, fetch from and acknowledge (ack, nak, term, in progress) one consumer."""
    return [
        f"{JS_API}.CONSUMER.DURABLE.CREATE.{stream}.{consumer}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.{consumer}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.{consumer}.>",
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
        f"$JS.ACK.*.*.{stream}.{consumer}.>",  # the v2 ack form: domain and account hash first
    ]


@dataclass(frozen=True)
class Durable:
    stage: str
    stream: str
    name: str
    per_process: bool


def durables() -> list[Durable]:
    """Every consumer the wiring builds (imports the stages: only `auth init` needs this)."""
    import sys

    from events.subjects import stream_of
    from handlers.runtime import Consumer
    from handlers.settings import LoopSettings
    from ops.wiring import reactions

    found = []
    for reaction in reactions():
        module = sys.modules[reaction.handle.__module__]
        options = module.consumer(LoopSettings()) if hasattr(module, "consumer") else Consumer()
        found.append(
            Durable(
                reaction.stage, stream_of(reaction.event), reaction.durable, options.per_process
            )
        )
    return found


def stage_permissions(stage: str, all_durables: list[Durable]) -> Permissions:
    """A stage's role: its events, its consumers, its lease keys and buckets, and reading."""
    if stage not in STAGE_EVENTS:
        raise AuthError(f"unknown role {stage!r}; known: {', '.join(roles())}")
    publish = read_subjects() + event_subjects(stage)
    deny: list[str] = []
    for durable in (d for d in all_durables if d.stage == stage):
        # A per-process consumer's name ends in a random token of its own: the role may use
        # any consumer of that stream except every fixed one of the other stages.
        name = "*" if durable.per_process else durable.name
        publish += consumer_subjects(durable.stream, name)
        if durable.per_process:
            others = [d for d in all_durables if d.stream == durable.stream and not d.per_process]
            deny += [s for d in others for s in consumer_subjects(d.stream, d.name)]
    if stage in TASK_TYPES:
        publish.append(f"$KV.{LEASES_BUCKET}.task.{TASK_TYPES[stage]}.>")
    if stage in MODEL_WRITERS:
        publish += [f"$O.{MODELS_BUCKET}.>", f"{JS_API}.STREAM.PURGE.OBJ_{MODELS_BUCKET}"]
    return Permissions(_unique(publish), (f"{inbox_prefix(stage)}.>",), _unique(deny))


def loop_permissions(all_durables: list[Durable]) -> Permissions:
    """`ringloop up`: the light stages inline, the projector's snapshots, the loop lease,
    and setup (create and update ringloop's streams and buckets; never delete one)."""
    inline = [stage for stage in STAGE_EVENTS if stage not in HEAVY_STAGES]
    publish: list[str] = []
    for stage in inline:
        publish += stage_permissions(stage, all_durables).publish
    from handlers.coordinator import LOOP_KEY

    publish.append(f"$KV.{LEASES_BUCKET}.{LOOP_KEY}")
    publish += snapshot_subjects()
    for stream in setup_streams():
        publish += [f"{JS_API}.STREAM.CREATE.{stream}", f"{JS_API}.STREAM.UPDATE.{stream}"]
    return Permissions(_unique(publish), (f"{inbox_prefix(LOOP_ROLE)}.>",))


def snapshot_subjects() -> list[str]:
    """Writing the projector's snapshots (replacing one purges its old chunks)."""
    return [f"$O.{SNAPSHOTS_BUCKET}.>", f"{JS_API}.STREAM.PURGE.OBJ_{SNAPSHOTS_BUCKET}"]


def projector_permissions() -> Permissions:
    """`ringloop run projector`: reading, its daemon events and the views' snapshots."""
    publish = read_subjects() + snapshot_subjects()
    for event_cls in (DaemonStarted, DaemonStopped):
        publish += subject_filters(event_cls)
    return Permissions(_unique(publish), (f"{inbox_prefix(PROJECTOR_ROLE)}.>",))


def setup_streams() -> list[str]:
    buckets = [f"KV_{LEASES_BUCKET}", f"OBJ_{MODELS_BUCKET}", f"OBJ_{SNAPSHOTS_BUCKET}"]
    return [GAMES_STREAM, LOG_STREAM, WORK_STREAM, *buckets]


def permissions(role: str, all_durables: list[Durable] | None = None) -> Permissions:
    """The permissions of a role (raises AuthError naming an unknown one)."""
    found = durables() if all_durables is None else all_durables
    if role == LOOP_ROLE:
        return loop_permissions(found)
    if role == PROJECTOR_ROLE:
        return projector_permissions()
    if role == TOOLS_ROLE:
        return Permissions(tuple(read_subjects()), (f"{inbox_prefix(TOOLS_ROLE)}.>",))
    if role == ADMIN_ROLE:
        return Permissions((">",), (">",))
    return stage_permissions(role, found)


def _unique(subjects: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(subjects))


# ------------------------------------------------------------------ files


def auth_dir(state_dir: Path) -> Path:
    return Path(state_dir) / AUTH_DIR


def seed_file(state_dir: Path, role: str) -> Path:
    return auth_dir(state_dir) / f"{role}.nk"


def config_file(state_dir: Path) -> Path:
    return auth_dir(state_dir) / CONFIG_FILE


def enabled(state_dir: Path) -> bool:
    """Whether `ringloop auth init` was run for this state folder."""
    return config_file(state_dir).exists()


def public_key(seed: bytes) -> str:
    from ops.auth_jwt import public

    return public(seed)


def role_seed(state_dir: Path, role: str, prefix: int = nkeys.PREFIX_BYTE_USER) -> bytes:
    """The role's nkey seed, made (mode 0600) the first time and kept after that (`prefix`:
    a user's by default; operator and account keys of the --jwt mode are kept the same way)."""
    path = seed_file(state_dir, role)
    if path.exists():
        return path.read_bytes().strip()
    from ops.auth_jwt import new_seed, write_private

    seed = new_seed(prefix)
    write_private(path, seed.decode() + "\n")
    return seed


def creds_file(state_dir: Path, role: str) -> Path:
    return auth_dir(state_dir) / f"{role}.creds"


def authorization_block(users: list[tuple[str, str, Permissions]]) -> str:
    """The nats-server `authorization` block: one nkey user per (role, public key, perms)."""
    lines = ["authorization {", "  users = ["]
    for role, key, perms in users:
        publish = f"allow: {_list(perms.publish)}"
        if perms.publish_deny:
            publish += f", deny: {_list(perms.publish_deny)}"
        lines += [
            f"    # role {role}",
            f'    {{ nkey: "{key}", permissions: {{',
            f"        publish: {{ {publish} }},",
            f"        subscribe: {{ allow: {_list(perms.subscribe)} }} }} }}",
        ]
    return "\n".join([*lines, "  ]", "}", ""])


def _list(subjects: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{s}"' for s in subjects) + "]"


def init(state_dir: Path, *, jwt: bool = False) -> list[Path]:
    """Write (or rewrite, keeping existing seeds) one credential per role and the server's
    block: nkey users in an `authorization` block, or with `jwt` an operator, its accounts
    and a `<role>.creds` user JWT per role (ops.auth_jwt)."""
    found = durables()
    users = [(r, role_seed(state_dir, r), permissions(r, found)) for r in roles()]
    header = (
        "# Written by `ringloop auth init`: one user per ringloop role. Include it in a\n"
        "# nats-server config (`include authorization.conf`); `ringloop up` on this state\n"
        "# folder puts it into its embedded server's config.\n"
    )
    written = [config_file(state_dir)]
    if jwt:
        from ops import auth_jwt

        keys = {
            name: role_seed(state_dir, name, prefix)
            for name, prefix in (
                (JWT_OPERATOR, nkeys.PREFIX_BYTE_OPERATOR),
                (JWT_ACCOUNT, nkeys.PREFIX_BYTE_ACCOUNT),
                (JWT_SYSTEM, nkeys.PREFIX_BYTE_ACCOUNT),
            )
        }
        block = auth_jwt.server_block(keys[JWT_OPERATOR], keys[JWT_ACCOUNT], keys[JWT_SYSTEM])
        for role, seed, perms in users:
            token = auth_jwt.user_jwt(keys[JWT_ACCOUNT], seed, role, perms)
            auth_jwt.write_private(creds_file(state_dir, role), auth_jwt.creds_text(token, seed))
            written.append(creds_file(state_dir, role))
    else:
        block = authorization_block([(r, public_key(seed), p) for r, seed, p in users])
        for role in roles():
            creds_file(state_dir, role).unlink(missing_ok=True)  # a former --jwt mode's
            written.append(seed_file(state_dir, role))
    config_file(state_dir).write_text(header + block)
    return written


# ------------------------------------------------------------------ connecting


def server_config(state_dir: Path) -> str:
    """The authorization block for an embedded server of this state folder ("" without)."""
    path = config_file(state_dir)
    return path.read_text() if path.exists() else ""


def as_role(settings: Settings, role: str) -> Settings:
    """Settings that connect as `role`: replies on its own inbox prefix, and, where no
    credential was given explicitly, its seed from the state folder's auth folder."""
    nats = settings.nats
    update: dict[str, object] = {}
    explicit = (nats.user, nats.token, nats.creds_file, nats.nkeys_seed_file)
    if all(value is None for value in explicit) and role in roles():
        creds, seed = creds_file(settings.state_dir, role), seed_file(settings.state_dir, role)
        if creds.exists():  # a host may hold only its role's file of the auth folder
            update["creds_file"] = creds
        elif seed.exists():
            update["nkeys_seed_file"] = seed
        elif enabled(settings.state_dir):
            raise AuthError(
                f"{auth_dir(settings.state_dir)} has no credential for role {role!r}; "
                "run `ringloop auth init` for this state folder"
            )
    if update or any(value is not None for value in explicit):  # an open server: no prefix
        update["inbox_prefix"] = nats.inbox_prefix or inbox_prefix(role)
    return settings.model_copy(update={"nats": nats.model_copy(update=update)})


def may_set_up(settings: Settings, role: str) -> bool:
    """Whether a process of `role` creates or updates streams: always without credentials
    (an open server), else only the loop and admin roles (the others may not)."""
    nats = settings.nats
    credentials = (nats.user, nats.token, nats.creds_file, nats.nkeys_seed_file)
    return role in SETUP_ROLES or all(value is None for value in credentials)
