"""`ringloop up`'s progress frames: redrawn in place on a terminal (a real pty), plain lines elsewhere."""

from __future__ import annotations

import io
import os

from ops.progress import Frames, Progress


def test_frames_redraw_in_place_on_a_terminal_and_append_elsewhere() -> None:
    master, slave = os.openpty()
    with open(slave, "w", closefd=True) as terminal:
        frames = Frames(terminal)
        assert frames.in_place
        frames.show("one\ntwo")
        frames.show("three\nfour")
        frames.release()
        frames.show("five")
    chunks = []  # a pty read returns what is there so far: read to the end (EIO once closed)
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    written = b"".join(chunks).decode()
    os.close(master)
    assert written.replace("\r\n", "\n") == "one\ntwo\n\x1b[2F\x1b[Jthree\nfour\nfive\n"
    plain = io.StringIO()
    frames = Frames(plain)
    frames.show("one\ntwo")
    frames.show("three")
    assert plain.getvalue() == "one\ntwo\nthree\n"


def test_the_view_names_the_profile_and_shows_a_reason_whole() -> None:
    reason = "rejected: " + " ".join(f"word{i}" for i in range(80))
    rows = {"square8_2p": {"selfplay_games": 3, "generation": 1, "best": None, "best_elo": None,
                           "decisions": 1, "last_decision": "ModelRejected", "last_reason": reason,
                           "training": None}}  # fmt: skip
    text = Progress(profile="tiny").render(rows)
    assert text.startswith("ringloop up (profile tiny)")
    assert " ".join(text.split()).endswith(" ".join(reason.split()))
