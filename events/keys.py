"""Rating keys, as the elo rater and the Elo read model key participants: weights' hash, else id."""

from __future__ import annotations

import re

MODEL_KEY_PREFIX = "sha256:"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def rating_key(participant_id: str, model_sha256: str | None = None) -> str:
    """The key a participant is rated under within a config.

    A model with known weights is ``sha256:<first 16 hex digits>`` (two names for one
    weights file are one participant); anything else is its id. Raises ValueError quoting
    `model_sha256` when it is not a sha256 hex digest.
    """
    if not model_sha256:
        return participant_id
    if not isinstance(model_sha256, str) or _SHA256.fullmatch(model_sha256) is None:
        raise ValueError(
            f"bad model_sha256 {model_sha256!r} for {participant_id!r}; "
            "expected 64 lowercase hex digits"
        )
    return f"{MODEL_KEY_PREFIX}{model_sha256[:16]}"


def is_model_key(key: str) -> bool:
    """Whether a rating key names a model's weights (see rating_key)."""
    return key.startswith(MODEL_KEY_PREFIX)
