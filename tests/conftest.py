from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .shared_guard import pytest_runtest_makereport  # noqa: F401 - a hook: shared skips fail on CI

# The repo sits beside the read-only shared/ folder (../shared from the repo root).
SHARED = Path(__file__).resolve().parents[2] / "shared"
PARITY_DIR = SHARED / "reference" / "parity"


@pytest.fixture(scope="module")
def tiny_vit():
    """A tiny_vit DiffMatte with seed-0 weights, one per test module (tests may change its config)."""
    from diffmatte import DiffMatte

    torch.manual_seed(0)
    return DiffMatte.from_config("tiny_vit")


@pytest.fixture(scope="module")
def tiny_vit_file(tmp_path_factory: pytest.TempPathFactory, tiny_vit) -> Path:
    """``tiny_vit`` saved as a .safetensors checkpoint."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    tiny_vit.save(path)
    return path


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # Tests run on 2-core machines; fixed threads keep timings and reductions stable.
    torch.set_num_threads(2)
    yield


def official_keys(model: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """key (without 'model.') -> (shape, dtype) from keys_<model>.txt."""
    path = PARITY_DIR / f"keys_{model}.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found (the shared reference folder is absent)")
    out = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape, dtype, _ = line.split("\t")
        dims = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
        out[key.removeprefix("model.")] = (dims, dtype)
    return out
