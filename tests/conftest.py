"""Shared fixtures: a real nats-server per test module, and ERROR logs fail the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import structlog
from structlog.testing import LogCapture
from structlog.typing import EventDict, Processor

from ops.app import App
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path_factory.mktemp("nats-store"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def settings(nats_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    return load_settings(None, state_dir=str(state), nats__url=nats_server.url)


@pytest_asyncio.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[App]:
    application = await App.open(settings, start_server=False)
    yield application
    await application.close()


@pytest.fixture(autouse=True)
def error_logs_fail(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LogCapture]:
    """Capture structlog output; an unexpected ERROR entry fails the test.

    The capture survives a later `structlog.configure` (an in-process `main()` reaching
    `ops.logging.configure_logging`): every processor chain configured during the test gets a
    recorder in front that copies each entry into the capture and passes it on unchanged.
    """
    capture = LogCapture()
    structlog.reset_defaults()  # a CLI test may have set a level filter (configure_logging)
    structlog.configure(processors=[capture])
    monkeypatch.setattr(structlog, "configure", _recording_configure(capture, structlog.configure))
    yield capture
    if request.node.get_closest_marker("allow_error_logs") is None:
        errors = [entry for entry in capture.entries if entry["log_level"] in ("error", "critical")]
        assert not errors, f"unexpected ERROR logs: {errors}"


def _recording_configure(
    capture: LogCapture, configure: Callable[..., None]
) -> Callable[..., None]:
    """`structlog.configure`, with `capture`'s recorder put in front of any new processor chain."""

    def record(_logger: object, method_name: str, event_dict: EventDict) -> EventDict:
        capture.entries.append({**event_dict, "log_level": method_name})
        return event_dict

    def recording_configure(processors: Iterable[Processor] | None = None, **kwargs: Any) -> None:
        if processors is not None:
            processors = [record, *processors]
        configure(processors, **kwargs)

    return recording_configure


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_error_logs: the test expects ERROR log entries")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
