"""Options every bus-using command shares, and turning them into Settings and an App."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from nats.js.errors import NotFoundError

from ops import auth
from ops.app import App, ConnectError
from ops.bus import BusConnectError
from ops.logging import configure_logging
from ops.server import ServerError
from ops.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def add_bus_arguments(parser: argparse.ArgumentParser, *, port_flag: str = "--port") -> None:
    """The bus options; ``port_flag`` names the embedded server's port option (a command
    whose own --port means something else, e.g. serve's HTTP port, passes --nats-port)."""
    group = parser.add_argument_group("bus")
    group.add_argument(
        "--nats",
        metavar="URL",
        action="append",
        help="use an existing NATS server or cluster: repeat it or comma-separate the URLs",
    )
    group.add_argument("--state-dir", type=Path, help="state folder (default ./.ringloop)")
    group.add_argument("--settings", type=Path, help="TOML settings file")
    group.add_argument(
        port_flag, dest="port", type=int, help="embedded server port (default: a free one)"
    )
    group.add_argument("--user")
    group.add_argument("--password")
    group.add_argument("--creds", type=Path, help="NATS credentials file")
    group.add_argument("--nkey", type=Path, help="NATS nkey seed file")
    group.add_argument("--tls-ca", type=Path)
    group.add_argument("--tls-cert", type=Path)
    group.add_argument("--tls-key", type=Path)
    group.add_argument("--replicas", type=int, help="stream replica count on a cluster")
    group.add_argument(
        "--lower-replicas",
        action="store_true",
        default=None,
        help="let setup lower an existing stream's replica count to --replicas",
    )
    group.add_argument("--log-level", default="warning")


def stream_sequence(minimum: int) -> Callable[[str], int]:
    """An argparse type: a stream sequence of at least `minimum`, refused quoting the text."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a stream sequence: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"a stream sequence is {minimum} or more, got {text!r}"
            )
        return value

    return parse


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    from handlers.profiles import PROFILES

    parser.add_argument("--profile", choices=sorted(PROFILES), help="loop settings profile")


def with_profile(settings: Settings, profile: str | None) -> Settings:
    """Settings with the loop section replaced by a named profile (when one is given)."""
    if profile is None:
        return settings
    from handlers.settings import LoopSettings

    # Fields the settings file set explicitly (e.g. configs) stay on top of the profile.
    dumped = settings.loop.model_dump(mode="json")
    explicit = {name: dumped[name] for name in settings.loop.model_fields_set}
    explicit.pop("preset", None)
    return settings.model_copy(update={"loop": LoopSettings.profile(profile, **explicit)})


def settings_from(args: argparse.Namespace) -> Settings:
    path = args.settings
    if path is None and args.state_dir is not None and (args.state_dir / "settings.toml").exists():
        path = args.state_dir / "settings.toml"
    elif path is None and Path(".ringloop/settings.toml").exists():
        path = Path(".ringloop/settings.toml")
    overrides: dict[str, Any] = {
        "state_dir": str(args.state_dir) if args.state_dir else None,
        "nats__url": ",".join(args.nats) if args.nats else None,
        "nats__port": args.port,
        "nats__user": args.user,
        "nats__password": args.password,
        "nats__creds_file": args.creds,
        "nats__nkeys_seed_file": args.nkey,
        "nats__tls_ca_file": args.tls_ca,
        "nats__tls_cert_file": args.tls_cert,
        "nats__tls_key_file": args.tls_key,
        "nats__replicas": args.replicas,
        "nats__lower_replicas": getattr(args, "lower_replicas", None),
    }
    return load_settings(path, **overrides)


def run_with_app(
    args: argparse.Namespace,
    body: Callable[[App], Awaitable[int]],
    *,
    start_server: bool = True,
    setup: bool = True,
    adjust: Callable[[Settings], Settings] | None = None,
    prepare: Callable[[Settings], None] | None = None,
    role: str = auth.TOOLS_ROLE,
) -> int:
    """Parse settings, open the App as `role` (ops.auth: its credential and rights), run
    `body`, close; clear one-line errors for the user.

    `setup=False` (read-only commands) never creates or changes a stream, nor does a role
    that may not; `prepare` runs before connecting (e.g. `up` ending processes a killed
    `up` left behind)."""
    configure_logging(getattr(args, "log_level", "warning"))
    try:
        settings = settings_from(args)
        if adjust is not None:
            settings = adjust(settings)
        settings = auth.as_role(settings, role)
    except (SettingsError, ValueError) as exc:
        print(f"ringloop: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        if prepare is not None:
            prepare(settings)
        may_set_up = setup and auth.may_set_up(settings, role)
        app = await App.open(settings, start_server=start_server, setup=may_set_up)
        try:
            return await body(app)
        finally:
            await app.close()

    try:
        return asyncio.run(main())
    except (ConnectError, BusConnectError, ServerError, ValueError, FileExistsError) as exc:
        print(f"ringloop: {exc}", file=sys.stderr)
        return 2
    except NotFoundError as exc:
        print(
            f"ringloop: not set up on this NATS ({exc.description}); `ringloop up` creates "
            "the streams",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set `stop` so the process drains instead of dying mid-event."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (RuntimeError, ValueError):  # not the main thread (embedded use, tests)
            return
