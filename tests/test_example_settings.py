"""examples/settings.toml loads, and every value it shows is the default it claims to be."""

from __future__ import annotations

import tomllib
from typing import Any

from ops.settings import Settings, load_settings
from tests.conftest import repo_root

EXAMPLE = repo_root() / "examples" / "settings.toml"


def _leaves(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _leaves(value, (*prefix, key))
        else:
            out[(*prefix, key)] = value
    return out


def test_the_example_loads_and_shows_the_defaults() -> None:
    loaded = load_settings(EXAMPLE).model_dump(mode="json")
    defaults = Settings().model_dump(mode="json")
    shown = _leaves(tomllib.loads(EXAMPLE.read_text()))
    assert len(shown) > 20
    for path, value in shown.items():
        default, got = defaults, loaded
        for part in path:
            default, got = default[part], got[part]
        assert got == default, f"{'.'.join(path)} = {value!r} in the example, default {default!r}"
