"""DIFFMATTE_REQUIRE_SHARED=1 makes a ../shared skip fail; other skips stay skips."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GUARD = Path(__file__).with_name("shared_guard.py")

INNER = '''
import pytest

def test_needs_shared_at_runtime():
    pytest.skip("/somewhere/shared/reference not found (the shared reference folder is absent)")

@pytest.mark.skipif(True, reason="shared data not present")
def test_needs_shared_by_mark():
    pass

@pytest.mark.skipif(True, reason="needs diffmatte[auto]")
def test_needs_an_extra():
    pass
'''


def _run(tmp_path: Path, require: str | None) -> str:
    (tmp_path / "conftest.py").write_text(GUARD.read_text())
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {k: v for k, v in os.environ.items() if k != "DIFFMATTE_REQUIRE_SHARED"}
    if require is not None:
        env["DIFFMATTE_REQUIRE_SHARED"] = require
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    return proc.stdout.strip().splitlines()[-1]


def test_required_shared_turns_its_skips_into_failures(tmp_path: Path) -> None:
    assert _run(tmp_path, None).startswith("3 skipped")  # by default a skip is a skip
    last = _run(tmp_path, "1")
    # the runtime skip fails in the call, the mark in setup (an error); the extra still skips
    assert "1 failed" in last and "1 skipped" in last and "1 error" in last, last
