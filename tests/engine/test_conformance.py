"""Every RingRift conformance vector (contract v2, rules-parity v1/v2) against the engine."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest
from conformance_parity import TS_NEXT_COMPARED, TS_NEXT_NOT_COMPARABLE
from conformance_reasons import GROUNDS
from conformance_runner import (
    Result,
    conformance_dir,
    load_cases,
    run_case,
)

from engine.conformance_exceptions import EXCEPTIONS

ROOT = conformance_dir()
HOW = (
    f"conformance vectors not found at {ROOT}: set RINGLOOP_CONFORMANCE_DIR=/path/to/shared/"
    "conformance (the folder holding ringrift-contract-vectors-v2 and ringrift-rules-parity)"
)


def vectors_found(root: Path) -> bool:
    return all((root / name).is_dir() for name in VECTOR_FOLDERS)


def missing_vectors_fail(environ: Mapping[str, str]) -> bool:
    """In CI (CI set, e.g. CI=true) or with RINGLOOP_CONFORMANCE_DIR set, missing vectors fail
    the run; only a local run with neither may skip the module."""
    return bool(environ.get("CI")) or "RINGLOOP_CONFORMANCE_DIR" in environ


VECTOR_FOLDERS = ("ringrift-contract-vectors-v2", "ringrift-rules-parity")
FOUND = vectors_found(ROOT)
if not FOUND and not missing_vectors_fail(os.environ):
    pytest.skip(HOW, allow_module_level=True)

CASES = load_cases(ROOT) if FOUND else []
RESULTS: dict[str, Result] = {}


def _result(case) -> Result:
    if case.id not in RESULTS:
        RESULTS[case.id] = run_case(case)
    return RESULTS[case.id]


def _all_results() -> list[Result]:
    return [_result(c) for c in CASES]


def test_vector_folder_is_found():
    assert FOUND, HOW + " (required: CI or RINGLOOP_CONFORMANCE_DIR is set)"


def test_missing_vectors_fail_in_ci_or_when_a_folder_is_named(tmp_path):
    assert missing_vectors_fail({"CI": "true"})
    assert missing_vectors_fail({"RINGLOOP_CONFORMANCE_DIR": str(tmp_path)})
    assert not missing_vectors_fail({})
    assert not vectors_found(tmp_path)  # a wrong folder is not taken for the vectors


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    result = _result(case)
    assert result.errors == []
    assert result.outcomes, "the case asserted nothing"


def test_every_vector_is_loaded():
    assert FOUND, HOW
    contract = 0
    for path in (ROOT / "ringrift-contract-vectors-v2").glob("*.json"):
        contract += len(json.loads(path.read_text())["vectors"])
    in_cases = sum(1 for c in CASES if c.kind == "contract") + sum(len(c.sequence) for c in CASES)
    assert in_cases == contract == 92
    assert sum(1 for c in CASES if c.kind.startswith("parity_")) == 39


def test_every_exception_names_a_vector_a_rule_and_a_checked_ground():
    ids = {c.id for c in CASES} | {v["id"] for c in CASES for v in c.sequence}
    assert EXCEPTIONS.keys() <= ids, EXCEPTIONS.keys() - ids
    for vid, entry in EXCEPTIONS.items():
        assert str(entry["rule"]).startswith("RR-CANON-R"), vid
        expect = entry["expect"]
        assert expect in ("rejected", "invalid_state") or "assertions" in expect, vid
        assert (expect == "rejected") == ("because" in entry), vid
        if expect == "rejected":
            assert entry["because"] in GROUNDS, vid


def test_counts_are_the_documented_ones():
    """The figures the README quotes; a change here is a change to report there."""
    assert FOUND, HOW
    results = _all_results()
    outcomes = Counter(o.split(":")[0] for r in results for o in r.outcomes.values())
    ids = sum(len(r.outcomes) for r in results)
    assert sum(len(r.not_run) for r in results) == 0
    assert sum(len(r.restarted) for r in results) == 16
    assert ids == 132  # 92 contract vectors/steps + 40 parity fixture steps
    assert outcomes == {
        "vector": 67,
        "spec_rejected": 53,
        "spec_state": 8,
        "spec_invalid_state": 4,
    }


def test_every_ts_next_key_is_compared_or_listed():
    assert FOUND, HOW
    seen = set()
    for c in CASES:
        steps = c.data.get("steps") or [c.data] if c.kind.startswith("parity_") else []
        for step in steps:
            seen |= set(step.get("expected", {}).get("tsNext", {}))
    assert seen == set(TS_NEXT_COMPARED) | set(TS_NEXT_NOT_COMPARABLE)
    assert not set(TS_NEXT_COMPARED) & set(TS_NEXT_NOT_COMPARABLE)
