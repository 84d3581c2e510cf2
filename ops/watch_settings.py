"""Settings for watching the loop: the dashboard's and the Prometheus endpoints' addresses.

Defined once here; `ops.settings.Settings` carries them as its `[dashboard]` and `[metrics]`
sections. Port 0 binds a free port (printed, and written to the state folder's
`dashboard.url` / `metrics.url`), so several loops or test runs on one host never collide;
set a fixed port for a bookmark or a Prometheus scrape config.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DashboardSettings(BaseModel):
    """The web page `ringloop up` and `ringloop dashboard` serve."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="serve the page from `ringloop up`")
    host: str = Field(default="127.0.0.1", description="address to bind (loopback by default)")
    port: int = Field(default=0, ge=0, le=65535, description="0 = a free port")
    poll_s: float = Field(
        default=0.5, gt=0, le=60, description="how often the live stream looks for changes"
    )
    bus_every_s: float = Field(
        default=2.0, gt=0, le=600, description="how often consumer lag and leases are read"
    )
    timeline_rows: int = Field(default=500, ge=1, description="timeline rows sent to the page")
    games_listed: int = Field(default=200, ge=1, description="games listed in the game viewer")


class MetricsSettings(BaseModel):
    """Prometheus `/metrics` of `ringloop up` and of each `ringloop run <handler>`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    host: str = "127.0.0.1"
    up_port: int = Field(default=0, ge=0, le=65535, description="`ringloop up`; 0 = a free port")
    run_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="each `ringloop run` process; 0 = a free port (several copies run at once)",
    )
    sample_every_s: float = Field(
        default=5.0, gt=0, le=600, description="how often consumer lag and leases are read"
    )
    latency_buckets: tuple[float, ...] = Field(
        default=(0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
        min_length=1,
        description="handler latency histogram buckets, seconds",
    )
