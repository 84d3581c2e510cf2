"""Least privilege against a real nats-server: `ringloop auth init`'s roles, each allowed only
what it emits; nkey and TLS connections; the whole loop under its roles."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats.errors
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nats.js.api import AckPolicy, ConsumerConfig, KeyValueConfig

from events import LOG_STREAM, Event, decode, new_event_id
from ops import auth
from ops.app import App
from ops.bus import BusConnectError, connect
from ops.server import EmbeddedServer
from ops.settings import NatsSettings, Settings, load_settings
from projections.eventstore import EventStore

GOLDEN = Path(__file__).resolve().parents[1] / "events" / "golden"
REFUSED_WITHIN_S = 2.0  # a refused publish gets no ack: the client's timeout ends it


def golden(name: str, **update: object) -> Event:
    event = decode((GOLDEN / name).read_bytes())
    return event.model_copy(update={"event_id": new_event_id(), **update})


@pytest.fixture(scope="module")
def auth_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("auth-state")
    auth.init(state)
    return state


@pytest.fixture(scope="module")
def auth_server(auth_state: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(auth_state / "nats", extra_config=auth.server_config(auth_state))
    server.start()
    yield server
    server.stop()


def role_settings(state: Path, server: EmbeddedServer, role: str) -> Settings:
    return auth.as_role(load_settings(None, state_dir=str(state), nats__url=server.url), role)


async def open_as(state: Path, server: EmbeddedServer, role: str) -> App:
    settings = role_settings(state, server, role)
    setup = auth.may_set_up(settings, role)
    return await App.open(settings, start_server=False, setup=setup)


@pytest_asyncio.fixture(scope="module")
async def admin(auth_state: Path, auth_server: EmbeddedServer) -> AsyncIterator[App]:
    app = await open_as(auth_state, auth_server, auth.ADMIN_ROLE)  # sets up the streams
    yield app
    await app.close()


async def subjects_in_log(admin: App, subject: str) -> list[str]:
    return [stored.event.event_id for stored in await admin.store.read_all(LOG_STREAM, subject)]


async def refused(awaitable: object) -> None:
    with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
        await asyncio.wait_for(awaitable, REFUSED_WITHIN_S * 2)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the roles


@pytest.mark.allow_error_logs
async def test_selfplay_may_not_publish_a_promotion_and_nothing_enters_the_log(
    auth_state: Path, auth_server: EmbeddedServer, admin: App
) -> None:
    app = await open_as(auth_state, auth_server, "selfplay")
    try:
        store = EventStore(app.nc, timeout=REFUSED_WITHIN_S)
        promotion = golden("model.promoted.v1.json")
        await refused(store.append(promotion))
        await refused(store.append_many([golden("match.completed.v2.json")]))
        game = golden("game.completed.v2.json")
        await store.append(game)  # its own games it may publish
        await refused(store.append(golden("game.completed.v2.json", purpose="eval")))
    finally:
        await app.close()
    assert promotion.event_id not in await subjects_in_log(admin, "loop.model.>")
    games = await admin.store.read_all("RINGLOOP_GAMES", "games.>")
    assert [s.event.event_id for s in games if s.event.event_id == game.event_id] == [game.event_id]


async def test_the_promoter_may_publish_a_promotion(
    auth_state: Path, auth_server: EmbeddedServer, admin: App
) -> None:
    app = await open_as(auth_state, auth_server, "promoter")
    try:
        promotion = golden("model.promoted.v1.json")
        await app.store.append(promotion)
    finally:
        await app.close()
    assert promotion.event_id in await subjects_in_log(admin, "loop.model.promoted.>")


@pytest.mark.allow_error_logs
async def test_tools_read_everything_and_change_nothing(
    auth_state: Path, auth_server: EmbeddedServer, admin: App
) -> None:
    await admin.store.append(golden("model.promoted.v1.json"))
    app = await open_as(auth_state, auth_server, auth.TOOLS_ROLE)
    try:
        assert app.settings.nats.inbox_prefix == "_INBOX_tools"
        assert await app.store.read_all(LOG_STREAM, "loop.>")  # reads (an ordered consumer)
        info = await app.store.js.stream_info(LOG_STREAM)
        js = app.nc.jetstream(timeout=REFUSED_WITHIN_S)
        before = info.state.messages
        await refused(
            EventStore(app.nc, timeout=REFUSED_WITHIN_S).append(golden("model.promoted.v1.json"))
        )
        await refused(js.update_stream(info.config))
        await refused(js.add_consumer(LOG_STREAM, ConsumerConfig(durable_name="tools-durable")))
        await refused(js.delete_consumer(LOG_STREAM, "promoter-evaluation-completed"))
        await refused(js.publish("$KV.ringloop-leases.loop", b"{}"))
        await refused(js.create_key_value(KeyValueConfig(bucket="tools-bucket")))
        assert (await app.store.js.stream_info(LOG_STREAM)).state.messages == before
    finally:
        await app.close()


@pytest.mark.allow_error_logs
async def test_selfplay_cannot_take_another_stages_messages(
    auth_state: Path, auth_server: EmbeddedServer, admin: App
) -> None:
    """Selfplay's per-process consumers have random names, so its role may use any consumer
    of the log except the fixed ones of every other stage (denied by name)."""
    durable = "promoter-evaluation-completed"
    await admin.store.js.add_consumer(
        LOG_STREAM,
        ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject="loop.eval.completed.>",
        ),
    )
    app = await open_as(auth_state, auth_server, "selfplay")
    try:
        js = app.nc.jetstream(timeout=REFUSED_WITHIN_S)
        sub = await js.pull_subscribe_bind(durable=durable, stream=LOG_STREAM)
        await refused(sub.fetch(1, timeout=REFUSED_WITHIN_S))
        own = "selfplay-model-promoted-0a1b2c3d"  # its own per-process kind of name
        await js.add_consumer(LOG_STREAM, ConsumerConfig(durable_name=own, inactive_threshold=5))
    finally:
        await app.close()


def test_every_stage_of_the_wiring_has_a_role() -> None:
    from ops.wiring import stages

    assert set(auth.STAGE_EVENTS) == set(stages())
    assert {d.stage for d in auth.durables()} <= set(auth.STAGE_EVENTS)


def test_each_stage_may_publish_exactly_its_own_events() -> None:
    roles = {role: set(auth.permissions(role).publish) for role in auth.STAGE_EVENTS}
    assert "loop.model.promoted.>" in roles["promoter"]
    assert "loop.training.completed.>" in roles["trainer"]
    assert "loop.match.completed.>" in roles["evaluator"]
    assert {"games.*.*.selfplay", "loop.system.heartbeat"} <= roles["selfplay"]
    promoting = [role for role, subjects in roles.items() if "loop.model.promoted.>" in subjects]
    assert promoting == ["promoter"]
    for role, subjects in roles.items():
        writes = {s for s in subjects if s.startswith(("loop.", "games.", "work.", "$KV.", "$O."))}
        assert f"loop.dlq.{role}" in writes
        assert not any(s in (">", "loop.>", "games.>") for s in writes), role


def test_every_role_replies_on_its_own_inbox() -> None:
    for role in auth.roles():
        if role != auth.ADMIN_ROLE:
            assert auth.permissions(role).subscribe == (f"_INBOX_{role}.>",)


# ------------------------------------------------------------------ credentials and connections


def test_auth_init_keeps_its_seeds_and_guards_them(tmp_path: Path) -> None:
    ringloop = [sys.executable, "-m", "ops", "auth", "init", "--state", str(tmp_path / "s")]
    first = subprocess.run(ringloop, capture_output=True, text=True, timeout=120, check=True)
    assert "authorization.conf" in first.stdout
    seeds = {role: auth.seed_file(tmp_path / "s", role).read_bytes() for role in auth.roles()}
    subprocess.run(ringloop, capture_output=True, text=True, timeout=120, check=True)
    for role, seed in seeds.items():
        path = auth.seed_file(tmp_path / "s", role)
        assert path.read_bytes() == seed
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert auth.public_key(seed.strip()) in auth.server_config(tmp_path / "s")


def test_auth_init_on_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "ops", "auth", "init", "--state", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ringloop auth init: {str(target)!r} is not a folder"
    ]


def test_a_handler_process_picks_its_roles_seed(auth_state: Path, tmp_path: Path) -> None:
    settings = auth.as_role(load_settings(None, state_dir=str(auth_state)), "trainer")
    assert settings.nats.nkeys_seed_file == auth.seed_file(auth_state, "trainer")
    assert settings.nats.inbox_prefix == "_INBOX_trainer"
    assert not auth.may_set_up(settings, "trainer")
    explicit = load_settings(None, state_dir=str(auth_state), nats__nkeys_seed_file="other.nk")
    assert auth.as_role(explicit, "trainer").nats.nkeys_seed_file == Path("other.nk")
    alone = tmp_path / "host"  # a host given only its role's seed
    auth.seed_file(alone, "evaluator").parent.mkdir(parents=True)
    auth.seed_file(alone, "evaluator").write_bytes(
        auth.seed_file(auth_state, "evaluator").read_bytes()
    )
    on_host = auth.as_role(load_settings(None, state_dir=str(alone)), "evaluator")
    assert on_host.nats.nkeys_seed_file == auth.seed_file(alone, "evaluator")
    assert (
        auth.as_role(load_settings(None, state_dir=str(alone)), "trainer").nats.nkeys_seed_file
        is None
    )
    (alone / "auth" / "authorization.conf").write_text("")  # an auth folder without its seed
    with pytest.raises(auth.AuthError, match="'trainer'"):
        auth.as_role(load_settings(None, state_dir=str(alone)), "trainer")


async def test_up_on_an_auth_folder_starts_a_server_that_refuses_strangers(tmp_path: Path) -> None:
    auth.init(tmp_path)
    settings = auth.as_role(load_settings(None, state_dir=str(tmp_path)), auth.LOOP_ROLE)
    app = await App.open(settings)  # the embedded server, with the authorization block
    try:
        assert app.server is not None
        with pytest.raises(BusConnectError, match="uthorization"):
            await connect(NatsSettings(), app.server.url)
        stranger = tmp_path / "stranger.nk"
        stranger.write_bytes(auth.role_seed(tmp_path / "elsewhere", "selfplay"))
        with pytest.raises(BusConnectError, match="uthorization"):
            await connect(NatsSettings(nkeys_seed_file=stranger), app.server.url)
    finally:
        await app.close()


def write_tls(folder: Path) -> dict[str, Path]:
    """A self-signed CA, a server certificate for 127.0.0.1 and a client certificate."""
    now = dt.datetime.now(dt.UTC)

    def issue(
        name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None = None,
        signer: ec.EllipticCurvePrivateKey | None = None, *, ca: bool = False,
        san: x509.SubjectAlternativeName | None = None,
    ) -> x509.Certificate:  # fmt: skip
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer or key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("ringloop test CA", ca_key, ca=True)
    files: dict[str, Path] = {}
    for name, san in (
        (
            "server",
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        ),
        ("client", None),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(name, key, ca.subject, ca_key, san=san)
        files[f"{name}_cert"] = folder / f"{name}.pem"
        files[f"{name}_key"] = folder / f"{name}-key.pem"
        files[f"{name}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{name}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    files["ca"] = folder / "ca.pem"
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return files


async def test_tls_with_client_certificates_and_a_roles_nkey(tmp_path: Path) -> None:
    auth.init(tmp_path)
    tls = write_tls(tmp_path)
    block = (
        f'tls {{\n  cert_file: "{tls["server_cert"]}"\n  key_file: "{tls["server_key"]}"\n'
        f'  ca_file: "{tls["ca"]}"\n  verify: true\n}}\n'
    )
    server = EmbeddedServer(tmp_path / "nats", extra_config=block + auth.server_config(tmp_path))
    server.start()
    try:
        secured = NatsSettings(
            nkeys_seed_file=auth.seed_file(tmp_path, "admin"),
            tls_ca_file=tls["ca"],
            tls_cert_file=tls["client_cert"],
            tls_key_file=tls["client_key"],
        )
        nc = await connect(secured, server.url)
        try:
            assert nc.connected_url is not None
            info = await nc.jetstream().account_info()
            assert info.limits is not None
        finally:
            await nc.close()
        with pytest.raises(BusConnectError):  # no client certificate
            await connect(secured.model_copy(update={"tls_cert_file": None, "tls_key_file": None}),
                          server.url)  # fmt: skip
        with pytest.raises(BusConnectError):  # not TLS at all
            await connect(NatsSettings(nkeys_seed_file=secured.nkeys_seed_file), server.url)
    finally:
        server.stop()


# ------------------------------------------------------------------ evaluators on two hosts

# A gate of 2 x 8 games, two a fetch (an evaluator's fetch takes up to `games_per_batch`
# items: with the default 8, a gate of three goes whole to whichever fetch comes first), an
# SPRT strict enough not to stop early.
GATE_TOML = """[loop]
preset = "tiny"
[loop.evaluation]
baseline_games = 8
games_per_batch = 2
sprt = { elo0 = 0.0, elo1 = 1.0, alpha = 0.001, beta = 0.001 }
[loop.tasks]
ack_wait_s = 4.0
"""


def evaluator_host(auth_state: Path, host: Path) -> Path:
    """A second host's state folder: the settings and only the evaluator's credential."""
    (host / auth.AUTH_DIR).mkdir(parents=True)
    seed = auth.seed_file(host, "evaluator")
    seed.write_bytes(auth.seed_file(auth_state, "evaluator").read_bytes())
    seed.chmod(0o600)
    (host / "settings.toml").write_text(GATE_TOML)
    return host


async def test_two_evaluators_with_the_evaluator_credential_share_a_gate(
    auth_state: Path, auth_server: EmbeddedServer, admin: App, tmp_path: Path
) -> None:
    from tests.play import candidate, gate_matches, stages_running

    (tmp_path / "loop.toml").write_text(GATE_TOML)
    settings = load_settings(tmp_path / "loop.toml", state_dir=str(auth_state),
                             nats__url=auth_server.url)  # fmt: skip
    gating = await App.open(auth.as_role(settings, "gating"), start_server=False, setup=False)
    trainer = await open_as(auth_state, auth_server, "trainer")
    hosts = [evaluator_host(auth_state, tmp_path / f"host-{i}") for i in (0, 1)]
    evaluators = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ops",
                "run",
                "evaluator",
                "--nats",
                auth_server.url,
                "--state-dir",
                str(host),
            ],  # fmt: skip
            stdout=(host / "run.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for host in hosts
    ]
    try:
        trained = await candidate(trainer, "square8_2p")  # the trainer's own rights
        async with stages_running(gating, "gating"):
            await trainer.store.append(trained)

            async def both_played() -> None:
                pids = {p.pid for p in evaluators}
                while {
                    m.producer.pid
                    for m in await gate_matches(admin, "square8_2p", "eval-gate-test")
                } < pids:
                    assert all(p.poll() is None for p in evaluators)
                    await asyncio.sleep(0.2)  # fmt: skip

            try:
                await asyncio.wait_for(both_played(), 180)
            except (TimeoutError, AssertionError):
                logs = [(host / "run.log").read_text()[-2000:] for host in hosts]
                raise AssertionError(f"both evaluators never played: {logs}") from None
    finally:
        for process in evaluators:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(60) for process in evaluators]
        await gating.close()
        await trainer.close()
    assert codes == [0, 0]
    matches = await gate_matches(admin, "square8_2p", "eval-gate-test")
    assert len({m.match_id for m in matches}) == len(matches)  # none twice


# ------------------------------------------------------------------ the loop under its roles


@pytest.mark.slow
def test_the_loop_runs_a_generation_under_least_privilege(tmp_path: Path) -> None:
    state = tmp_path / "state"
    auth.init(state)
    log = tmp_path / "up.log"
    argv = [sys.executable, "-m", "ops", "up", "--profile", "tiny", "--generations", "1"]
    argv += ["--state-dir", str(state), "--progress-every", "0"]
    with log.open("wb") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=600,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    assert result.returncode == 0, log.read_text()[-3000:]
    server_log = (state / "nats" / "nats-server.log").read_text()
    assert "Violation" not in server_log
    assert "authorization" in (state / "nats" / "nats-server.conf").read_text()

    async def producers() -> set[tuple[str, str]]:
        app = await App.open(auth.as_role(load_settings(None, state_dir=str(state)), "tools"),
                             setup=False)  # fmt: skip
        try:
            stored = await app.store.read_all(LOG_STREAM, "loop.>")
        finally:
            await app.close()
        return {(s.event.type, s.event.producer.name) for s in stored}

    seen = asyncio.run(producers())
    decisions = {name for kind, name in seen if kind in ("model.promoted", "model.rejected")}
    assert decisions == {"promoter"}
    for stage in ("selfplay", "trainer", "evaluator", "gating", "elo-rater", "data-gate"):
        assert any(name == stage for _, name in seen), (stage, json.dumps(sorted(seen)))


@pytest.mark.allow_error_logs
async def test_jwt_mode_creds_carry_the_same_roles(tmp_path: Path) -> None:
    """`auth init --jwt`: an operator-mode server; each role connects with its .creds file."""
    auth.init(tmp_path, jwt=True)
    assert "operator:" in auth.server_config(tmp_path)
    assert stat.S_IMODE(auth.creds_file(tmp_path, "selfplay").stat().st_mode) == 0o600
    server = EmbeddedServer(tmp_path / "nats", extra_config=auth.server_config(tmp_path))
    server.start()
    try:
        admin = await open_as(tmp_path, server, auth.ADMIN_ROLE)
        assert admin.settings.nats.creds_file == auth.creds_file(tmp_path, auth.ADMIN_ROLE)
        selfplay = await open_as(tmp_path, server, "selfplay")
        promoter = await open_as(tmp_path, server, "promoter")
        try:
            refused_one = golden("model.promoted.v1.json")
            await refused(EventStore(selfplay.nc, timeout=REFUSED_WITHIN_S).append(refused_one))
            await selfplay.store.append(golden("game.completed.v2.json"))
            allowed = golden("model.promoted.v1.json")
            await promoter.store.append(allowed)
            assert await subjects_in_log(admin, "loop.model.>") == [allowed.event_id]
        finally:
            await selfplay.close()
            await promoter.close()
            await admin.close()
        with pytest.raises(BusConnectError):  # a plain nkey is no user in operator mode
            await connect(
                NatsSettings(nkeys_seed_file=auth.seed_file(tmp_path, "admin")), server.url
            )
    finally:
        server.stop()
