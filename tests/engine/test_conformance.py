"""Every RingRift conformance vector (contract v2, rules-parity v1/v2) against the engine."""

from __future__ import annotations

import json

import pytest
from conformance_runner import conformance_dir, load_cases, run_case

from engine.conformance_exceptions import EXCEPTIONS

ROOT = conformance_dir()
if not ROOT.is_dir():
    pytest.skip(
        f"conformance folder {ROOT} not found (set RINGLOOP_CONFORMANCE_DIR)",
        allow_module_level=True,
    )

CASES = load_cases(ROOT)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    assert run_case(case) == []


def test_every_vector_is_loaded():
    contract = 0
    for path in (ROOT / "ringrift-contract-vectors-v2").glob("*.json"):
        contract += len(json.loads(path.read_text())["vectors"])
    in_cases = sum(1 for c in CASES if c.kind == "contract") + sum(len(c.sequence) for c in CASES)
    assert in_cases == contract == 92
    assert sum(1 for c in CASES if c.kind.startswith("parity_")) == 39


def test_every_exception_names_a_vector_and_a_rule():
    ids = {c.id for c in CASES} | {v["id"] for c in CASES for v in c.sequence}
    for vid, entry in EXCEPTIONS.items():
        assert vid in ids, vid
        assert str(entry["rule"]).startswith("RR-CANON-R")
        assert entry["expect"] in ("rejected", "invalid_state") or "assertions" in entry["expect"]
