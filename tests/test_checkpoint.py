"""Official .pth and diffmatte .safetensors files: strict loading and clear errors."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from diffmatte import CheckpointError, DiffMatte


@pytest.fixture(scope="module")
def tiny() -> DiffMatte:
    torch.manual_seed(0)
    return DiffMatte.from_config("tiny_res34")


def _inputs():
    g = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 40, 52, generator=g)
    trimap = torch.full((1, 1, 40, 52), 0.5)
    trimap[..., :8] = 0
    trimap[..., -8:] = 1
    noise = torch.randn(1, 1, 40, 52, generator=g)
    return image, trimap, noise


def test_safetensors_round_trip_keeps_config_and_output(tiny: DiffMatte, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    tiny.save(path)
    loaded = DiffMatte.from_checkpoint(path)
    assert loaded.config == tiny.config
    image, trimap, noise = _inputs()
    a = tiny.sample(image, trimap, 3, noise=noise).alpha
    b = loaded.sample(image, trimap, 3, noise=noise).alpha
    assert torch.equal(a, b)


def test_official_style_pth_with_prefixes_loads(tiny: DiffMatte, tmp_path: Path) -> None:
    sd = {f"module.model.{k}": v for k, v in tiny.net.state_dict().items()}
    path = tmp_path / "official.pth"
    torch.save({"model": sd, "iteration": 5}, path)
    loaded = DiffMatte.from_checkpoint(path, preset="tiny_res34")
    image, trimap, noise = _inputs()
    assert torch.equal(tiny.sample(image, trimap, 2, noise=noise).alpha, loaded.sample(image, trimap, 2, noise=noise).alpha)


def test_wrong_architecture_names_preset_keys_and_shapes(tiny: DiffMatte, tmp_path: Path) -> None:
    path = tmp_path / "res.pth"
    torch.save({"model": {f"model.{k}": v for k, v in tiny.net.state_dict().items()}}, path)
    with pytest.raises(CheckpointError) as e:
        DiffMatte.from_checkpoint(path, preset="tiny_vit")
    msg = str(e.value)
    assert "preset 'tiny_vit'" in msg and "missing keys (first: backbone." in msg and "unexpected keys" in msg


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    net = DiffMatte.from_config("tiny_vit").net
    sd = {f"model.{k}": v for k, v in net.state_dict().items()}
    sd["model.decoder.matting_head.matting_convs.3.weight"] = torch.zeros(1, 4, 1, 1)
    torch.save({"model": sd}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"shapes differ \(first: decoder.matting_head.matting_convs.3.weight"):
        DiffMatte.from_checkpoint(tmp_path / "bad.pth", preset="tiny_vit")


def test_unrecognisable_keys_ask_for_a_preset(tmp_path: Path) -> None:
    torch.save({"model": {"model.foo.weight": torch.zeros(2)}}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="pass preset="):
        DiffMatte.from_checkpoint(tmp_path / "x.pth")


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    with pytest.raises(CheckpointError, match="weights-only"):
        DiffMatte.from_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all"])
def test_corrupt_files_give_clear_errors(tmp_path: Path, content: bytes) -> None:
    for suffix in (".pth", ".safetensors"):
        path = tmp_path / f"c{suffix}"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=str(path.name)):
            DiffMatte.from_checkpoint(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        DiffMatte.from_checkpoint(tmp_path / "nope.pth")


def test_save_is_atomic_and_leaves_no_temporary_file(tiny: DiffMatte, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    tiny.save(path)
    tiny.save(path)  # overwriting our own output is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_a_failed_safetensors_write_leaves_the_old_file_and_no_temporary(
    tiny: DiffMatte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffmatte.checkpoint import save_safetensors

    path = tmp_path / "m.safetensors"
    save_safetensors(tiny.net, tiny.net.config, path)
    good = path.read_bytes()

    def disk_full(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_safetensors(tiny.net, tiny.net.config, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"] and path.read_bytes() == good
