"""The official parity kit, run on our adapter: alpha, x0 and x_t within 1e-4, features 1e-3."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PARITY_DIR

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_check_parity_all_references(tmp_path: Path) -> None:
    script = PARITY_DIR / "check_parity.py"
    if not script.is_file():
        pytest.skip(f"{script} not found (the shared reference folder is absent)")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run(
        [sys.executable, str(script), str(REPO / "tests" / "parity_adapter.py"), "--json", str(tmp_path / "p.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, f"parity failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert last == "27 passed, 0 failed", proc.stdout[-2000:]
