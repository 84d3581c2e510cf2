"""A seat played by any service speaking RingRift's AI-service contract (POST /ai/move), so a
tournament rates the loop's models against RingRift's own AI ladder or a `ringloop serve`.

A participant is named by its URL, ``http://host:port/?difficulty=5`` (difficulty 1-10,
default 5; optional ``ai_type``); that canonical URL is its participant id. Each move posts
the position (RingRift GameState JSON, with ringloop's turn bookkeeping under "ringloop",
which RingRift ignores), the seat and a seed drawn from the game's generator; the answer
must be a legal move in that position.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from engine.serialize import match_move, move_from_json, state_to_json
from handlers.runtime import TransientError

if TYPE_CHECKING:
    import httpx

    from engine.move import Move
    from engine.state import GameState

SERVICE_SCHEMES = ("http", "https")
DEFAULT_SERVICE_DIFFICULTY = 5
SERVICE_TIMEOUT_S = 30.0  # one move's wait (RingRift's own client waits 30 s)


class ServiceUnavailable(TransientError):
    """The service did not answer (refused, timed out, 5xx): the game is retried later."""


def is_service_url(name: str) -> bool:
    return name.lower().startswith(tuple(f"{s}://" for s in SERVICE_SCHEMES))


@dataclass(frozen=True)
class ServiceAddress:
    base: str  # scheme://host:port[/path], no trailing slash
    difficulty: int
    ai_type: str | None = None

    @property
    def participant_id(self) -> str:
        query = {"difficulty": self.difficulty} | (
            {"ai_type": self.ai_type} if self.ai_type else {}
        )
        return f"{self.base}/?{urlencode(query)}"


def parse_service_url(url: str) -> ServiceAddress:
    """A participant URL, checked; ValueError quoting it when it is not one."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SERVICE_SCHEMES or not parts.hostname:
        raise ValueError(f"not a service URL {url!r}; expected http://host:port/?difficulty=N")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"difficulty", "ai_type"})
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} in service URL {url!r}")
    raw = query.get("difficulty", [str(DEFAULT_SERVICE_DIFFICULTY)])[-1]
    if not raw.isdigit() or not 1 <= int(raw) <= 10:
        raise ValueError(f"difficulty must be 1-10 in service URL {url!r}, got {raw!r}")
    base = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"
    return ServiceAddress(base, int(raw), query.get("ai_type", [None])[-1])


@dataclass
class ServicePlayer:
    """engine.players' Player protocol over HTTP: one POST /ai/move per move."""

    address: ServiceAddress
    timeout_s: float = SERVICE_TIMEOUT_S
    _client: httpx.Client | None = field(default=None, repr=False)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.address.participant_id

    def select_move(self, state: GameState, rng: random.Random) -> Move:

        answer = self._post(state, rng)
        data = answer.get("move") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise ValueError(f"{self.address.participant_id} answered without a move: {answer!r}")
        try:
            return match_move(state, move_from_json(data, state.geometry))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{self.address.participant_id} answered a move that is not legal here: "
                f"{data!r} ({exc})"
            ) from None

    def _post(self, state: GameState, rng: random.Random) -> Any:
        import httpx

        if self._client is None:
            self._client = httpx.Client(base_url=self.address.base, timeout=self.timeout_s)
        body: dict[str, Any] = {
            "game_state": state_to_json(state),
            "player_number": state.current_player,
            "difficulty": self.address.difficulty,
            "seed": rng.getrandbits(31),
        }
        if self.address.ai_type:
            body["ai_type"] = self.address.ai_type
        try:
            response = self._client.post("/ai/move", json=body)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"{self.address.base}/ai/move: {exc!r}") from None
        if response.status_code >= 500:
            raise ServiceUnavailable(f"{self.address.base}/ai/move: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ValueError(
                f"{self.address.participant_id} refused the position: HTTP "
                f"{response.status_code} {response.text[:300]}"
            )
        return response.json()
