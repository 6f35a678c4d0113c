"""DIFFMATTE_REQUIRE_SHARED=1 turns every skip for a missing ../shared into a failure.

Tests that need the read-only shared folder beside the repo (parity references, official key
listings, the MATLAB metric kit, the packaged model's held-out images) skip without it, so a
plain clone still runs the rest. CI sets the variable so that a missing or moved folder
fails the run instead of passing it quietly. The rule: a skip whose reason names the shared
folder (its path or the word "shared") is about ../shared.

Imported by conftest.py; it imports nothing heavy so tests can load it on its own.
"""
from __future__ import annotations

import os
from typing import Any, Generator

import pytest

REQUIRE_SHARED_VAR = "DIFFMATTE_REQUIRE_SHARED"


def shared_required() -> bool:
    return os.environ.get(REQUIRE_SHARED_VAR, "") not in ("", "0")


def is_shared_skip(reason: str) -> bool:
    return "shared" in reason.lower()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and shared_required()) or getattr(report, "wasxfail", None) is not None:
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if is_shared_skip(reason):
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_SHARED_VAR}=1 but this test skipped: {reason}"
