"""The README's tables of commands, streams and events say what the code has."""

from __future__ import annotations

import re

from events import streams
from events.catalogue import EVENT_TYPES
from ops.ai_service.settings import DIFFICULTY_BUDGETS
from ops.cli import command_modules
from tests.conftest import repo_root

README = (repo_root() / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def first_cells(text: str) -> list[str]:
    return [line.split("|")[1].strip() for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")][1:]  # fmt: skip


def test_the_commands_table_names_every_command_and_no_other() -> None:
    named = {re.match(r"`ringloop ([a-z-]+)", cell).group(1)  # type: ignore[union-attr]
             for cell in first_cells(section("Commands"))}  # fmt: skip
    assert named == set(command_modules())


def test_the_streams_table_names_every_stream_and_bucket() -> None:
    declared = {value for name, value in vars(streams).items()
                if name.endswith(("_STREAM", "_BUCKET")) and isinstance(value, str)}  # fmt: skip
    named = {cell.strip("`") for cell in first_cells(section("Streams and buckets"))}
    assert named == declared


def test_the_events_paragraph_names_every_event() -> None:
    text = section("Events")
    listed = text[text.index("system):") + len("system):") : text.index(". Each has")]
    listed = re.sub(r"\([^)]*\)", "", listed).replace("\n", "")
    names = set()
    for item in re.split(r",| / ", listed):
        parts = [p.strip() for p in item.split("/") if p.strip()]
        prefix = re.match(r"[A-Z][a-z]+", parts[0]).group(0)  # type: ignore[union-attr]
        names |= {parts[0], *(prefix + p for p in parts[1:])}
    assert names == {cls.__name__ for cls in EVENT_TYPES}


def test_the_difficulty_table_is_the_settings_table() -> None:
    rows = [line for line in section("The AI service (`ringloop serve`)").splitlines()
            if re.match(r"\| \d+ \|", line)]  # fmt: skip
    expected = [
        f"| {b.difficulty} | {b.player} | {b.simulations} |" for b in DIFFICULTY_BUDGETS.values()
    ]
    assert rows == expected
