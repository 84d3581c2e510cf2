"""Settings for the bus and the state folder, validated at start-up (not at import)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from handlers.settings import LoopSettings, SnapshotSettings


class SettingsError(ValueError):
    """Bad settings: the message names the field and quotes the value."""


class NatsSettings(BaseModel):
    """How to reach NATS. No URL means: start the embedded nats-server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None
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
    replicas: int = Field(default=1, ge=1, le=5)
    sync_interval: Literal["default", "always"] = Field(
        default="default",
        description="embedded server fsync policy: 'always' fsyncs every append (~3x slower)",
    )

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
