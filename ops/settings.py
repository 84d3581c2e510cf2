"""Settings for the bus and the state folder, validated at start-up (not at import)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from handlers.settings import LoopSettings, SnapshotSettings
from ops.watch_settings import DashboardSettings, MetricsSettings


class SettingsError(ValueError):
    """Bad settings: the message names the field and quotes the value."""


URL_SCHEMES = ("nats", "tls", "ws", "wss")


def parse_servers(text: str) -> list[str]:
    """`nats://a:4222,nats://b:4222` (or bare `host:port`) as a list of URLs; a bad one
    raises ValueError quoting it."""
    servers = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            raise ValueError(f"empty URL in {text!r}")
        url = part if "://" in part else f"nats://{part}"
        parsed = urlsplit(url)
        try:
            port = parsed.port
        except ValueError:
            port = -1
        if parsed.scheme not in URL_SCHEMES or not parsed.hostname or port == -1:
            raise ValueError(f"not a NATS URL: {part!r} (expected nats://host:port)")
        servers.append(url)
    return servers


class NatsSettings(BaseModel):
    """How to reach NATS. No URL means: start the embedded nats-server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        default=None, description="one URL or several, comma-separated (a cluster's seeds)"
    )
    port: int = Field(default=0, ge=0, le=65535, description="embedded server port; 0 = free")
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds_file: Path | None = None
    nkeys_seed_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    inbox_prefix: str | None = Field(
        default=None, description="reply subjects' prefix (a role's own; ops.auth sets it)"
    )
    replicas: int | None = Field(
        default=None, ge=1, le=5, description="stream replicas; unset keeps what exists (new: 1)"
    )
    lower_replicas: bool = Field(
        default=False, description="allow setup to lower an existing stream's replica count"
    )
    sync_interval: Literal["default", "always"] = Field(
        default="default",
        description="embedded server fsync policy: 'always' fsyncs every append (~3x slower)",
    )

    @field_validator("url")
    @classmethod
    def _check_urls(cls, value: str | None) -> str | None:
        if value is not None:
            parse_servers(value)
        return value

    @property
    def servers(self) -> list[str]:
        """The URLs to try, in the given order (empty: the embedded server)."""
        return parse_servers(self.url) if self.url else []

    @model_validator(mode="after")
    def _check_pairs(self) -> NatsSettings:
        if (self.user is None) != (self.password is None):
            raise ValueError("user and password must be given together")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        return self


class StreamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    games_max_bytes: int = Field(default=-1, description="-1 = unlimited")
    games_max_age_s: float = Field(default=0, ge=0, description="0 = keep forever")
    duplicate_window_s: float = Field(default=120, gt=0)


class Settings(BaseModel):
    """All of ringloop's settings; the loop's own thresholds live in ops.loop_settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Path(".ringloop")
    nats: NatsSettings = NatsSettings()
    streams: StreamSettings = StreamSettings()
    loop: LoopSettings = Field(default_factory=LoopSettings, description="see handlers.settings")
    snapshots: SnapshotSettings = SnapshotSettings()
    dashboard: DashboardSettings = DashboardSettings()
    metrics: MetricsSettings = MetricsSettings()

    @property
    def nats_store_dir(self) -> Path:
        return self.state_dir / "nats"

    @property
    def projections_db(self) -> Path:
        return self.state_dir / "projections.db"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read a TOML settings file (if given or present in the state folder) plus overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read settings file {str(path)!r}: {exc}") from None
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, field = key.partition("__")
        if field:
            data.setdefault(section, {})[field] = value
        else:
            data[section] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for item in exc.errors():
        field = ".".join(str(p) for p in item["loc"]) or "settings"
        lines.append(f"setting {field}={item.get('input')!r}: {item['msg']}")
    return "; ".join(lines)
