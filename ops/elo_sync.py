"""RingRift's synchronous EloService API: runs the async core on a private loop in a thread.

``get_elo_service()`` keeps one service per state folder and bus; the module functions
(``init_elo_database``, ``get_leaderboard``, ...) are RingRift's, taking that service as ``db``.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from ops.elo_core import AsyncEloService, default_settings
from ops.settings import Settings

T = TypeVar("T")


# ---------------------------------------------------------------- the synchronous facade


class EloService:
    """RingRift's synchronous EloService: the async core on a private loop in a thread."""

    def __init__(self, settings: Settings | None = None, *, rater: bool = True) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ringloop-elo-service", daemon=True
        )
        self._thread.start()
        try:
            self.core = self._run(AsyncEloService.open(settings, rater=rater))
        except BaseException:
            self._stop_loop()
            raise
        self.timeout = self.core.timeout

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            raise RuntimeError("this EloService is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self.core.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> EloService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def init_elo_database(self) -> EloService:
        self._run(self.core.init_elo_database())
        return self

    def register_model(self, model_id: str, *args: Any, **kwargs: Any) -> None:
        self._run(self.core.register_model(model_id, *args, **kwargs))

    def register_models(self, models: Sequence[Mapping[str, Any]]) -> int:
        return self._run(self.core.register_models(models))

    def update_elo_after_match(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._run(self.core.update_elo_after_match(*args, **kwargs))

    def record_match_and_update(self, *args: Any, **kwargs: Any) -> tuple[str, dict[str, float]]:
        return self._run(self.core.record_match_and_update(*args, **kwargs))

    def leaderboard(self, config: str, limit: int | None = None) -> list[dict[str, Any]]:
        return self._run(self.core.leaderboard(config, limit))

    def get_leaderboard(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._run(self.core.get_leaderboard(*args, **kwargs))

    def get_rating(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._run(self.core.get_rating(*args, **kwargs))

    def get_head_to_head(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._run(self.core.get_head_to_head(*args, **kwargs))

    def get_match_history(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._run(self.core.get_match_history(*args, **kwargs))

    def get_rating_history(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._run(self.core.get_rating_history(*args, **kwargs))


_services: dict[tuple[str, str | None], EloService] = {}
_services_lock = threading.Lock()


def get_elo_service(settings: Settings | None = None, *, rater: bool = True) -> EloService:
    """The process's EloService for a state folder and bus (created on first use)."""
    settings = settings or default_settings()
    key = (str(settings.state_dir.resolve()), settings.nats.url)
    with _services_lock:
        service = _services.get(key)
        if service is None or service._loop.is_closed():
            service = _services[key] = EloService(settings, rater=rater)
        return service


@atexit.register
def close_elo_services() -> None:
    """Close every service get_elo_service made (also run at interpreter exit)."""
    with _services_lock:
        services = list(_services.values())
        _services.clear()
    for service in services:
        service.close()


# ---------------------------------------------------------------- RingRift's module functions


def init_elo_database(settings: Settings | None = None) -> EloService:
    return get_elo_service(settings).init_elo_database()


def register_models(db: EloService, models: Sequence[Mapping[str, Any]]) -> int:
    return db.register_models(models)


def update_elo_after_match(db: EloService, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return db.update_elo_after_match(*args, **kwargs)


def get_leaderboard(db: EloService, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return db.get_leaderboard(*args, **kwargs)


def get_head_to_head(db: EloService, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return db.get_head_to_head(*args, **kwargs)


def get_match_history(db: EloService, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return db.get_match_history(*args, **kwargs)


def get_rating_history(db: EloService, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return db.get_rating_history(*args, **kwargs)
