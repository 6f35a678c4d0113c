"""Closed-form's colour model fused with the network's matte (diffmatte.fusion)."""
from __future__ import annotations

import numpy as np
import pytest

from diffmatte.fusion import FusionConfig, confidence_weights, fuse

FG, BG = np.array([0.9, 0.2, 0.1]), np.array([0.1, 0.3, 0.8])


def _scene(h: int = 40, w: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ramp composite (alpha 0 -> 1 left to right), its trimap and true alpha."""
    xx = np.broadcast_to(np.arange(w, dtype=np.float64), (h, w))
    alpha = np.clip((xx - 0.3 * w) / (0.4 * w), 0, 1)
    image = alpha[..., None] * FG + (1 - alpha[..., None]) * BG
    trimap = np.full((h, w), 0.5)
    trimap[xx < 0.2 * w] = 0
    trimap[xx > 0.8 * w] = 1
    return image, trimap, alpha


def test_a_wrong_network_matte_is_pulled_to_what_the_colours_say() -> None:
    # The network calls a background-coloured stripe opaque (the bulb failure); the colours say 0.
    image, trimap, alpha = _scene()
    net = alpha.copy()
    net[:, 12:16] = 1.0
    fused = fuse(image, trimap, net, 1e-5, FusionConfig(strength=1e-5, floor=1e-5, iterations=300))
    assert np.abs(fused - alpha)[trimap == 0.5].mean() < 0.2 * np.abs(net - alpha)[trimap == 0.5].mean()
    assert np.array_equal(fused[trimap != 0.5], trimap[trimap != 0.5])  # known pixels stay exact


def test_a_sure_network_keeps_its_matte() -> None:
    image, trimap, alpha = _scene()
    net = np.clip(alpha + 0.1 * np.sin(np.arange(alpha.size).reshape(alpha.shape)), 0, 1)
    kept = fuse(image, trimap, net, 1e3, FusionConfig(strength=1e3, floor=1e3))
    assert np.abs(kept - net)[trimap == 0.5].max() < 1e-3


def test_nothing_to_solve_returns_the_trimap_or_the_network() -> None:
    image, trimap, alpha = _scene()
    known = np.where(alpha > 0.5, 1.0, 0.0)
    assert np.array_equal(fuse(image, known, alpha, 1e-3), known.astype(np.float32))
    all_unknown = np.full_like(trimap, 0.5)
    assert np.allclose(fuse(image, all_unknown, alpha, 1e-3), alpha)  # no anchor for the colour model


def test_weights_fall_from_strength_to_floor_as_the_seeds_disagree() -> None:
    cfg = FusionConfig(strength=1e-2, floor=1e-6, spread_scale=0.05)
    spread = np.array([[0.0, 0.01, 0.05, 0.2, 1.0]])
    w = confidence_weights(spread, spread.shape, cfg)
    assert w[0, 0] == pytest.approx(1e-2) and np.all(np.diff(w[0]) < 0)
    assert w[0, 2] == pytest.approx(np.sqrt(1e-2 * 1e-6))  # halfway in log space at spread_scale
    assert np.all(confidence_weights(None, (2, 3), cfg) == 1e-2)


def test_a_trimap_without_sure_foreground_or_background_takes_the_unanchored_setting() -> None:
    cfg = FusionConfig(strength=1e-6, floor=1e-6, iterations=1000, unanchored_strength=1e-4, unanchored_iterations=400)
    _, trimap, _ = _scene()
    assert cfg.for_trimap(trimap) is cfg  # both kinds known
    for lacking in (np.where(trimap == 1, 0.5, trimap), np.where(trimap == 0, 0.5, trimap)):
        used = cfg.for_trimap(lacking)
        assert (used.strength, used.floor, used.iterations) == (1e-4, 1e-4, 400)
        assert used.unanchored_strength is None and used.unanchored_iterations is None
    plain = FusionConfig(strength=1e-4, floor=1e-5, iterations=50)
    assert plain.for_trimap(np.full((4, 4), 0.5)) == plain  # nothing set: the same everywhere


def test_the_unanchored_setting_survives_the_models_config() -> None:
    import dataclasses

    from diffmatte.models.configuration import DiffMatteConfig, get_preset

    cfg = FusionConfig(strength=1e-6, floor=1e-6, iterations=1000, unanchored_strength=1e-4, unanchored_iterations=400)
    config = dataclasses.replace(get_preset("lite0"), fusion=cfg)
    assert DiffMatteConfig.from_dict(config.to_dict()).fusion == cfg


@pytest.mark.parametrize("bad", [dict(strength=0), dict(floor=1e-2, strength=1e-3), dict(iterations=0),
                                 dict(unanchored_strength=0.0), dict(unanchored_iterations=0)])
def test_bad_fusion_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="fusion"):
        FusionConfig(**bad)


def test_predict_fuses_the_final_matte_only_when_asked() -> None:
    import dataclasses

    import torch

    from diffmatte import DiffMatte

    torch.manual_seed(0)
    model = DiffMatte.from_config("tiny_vit")
    image, trimap, _ = _scene(64, 64)
    image = image.astype(np.float32)
    plain = model.predict(image, trimap, steps=2, seed=3)
    assert model.config.fusion is None and np.array_equal(model.predict(image, trimap, steps=2, seed=3, fusion=None), plain)
    cfg = FusionConfig(strength=1e-4, floor=1e-4)
    fused = model.predict(image, trimap, steps=2, seed=3, fusion=cfg)
    assert np.allclose(fused, fuse(image, trimap.astype(np.float32), plain, 1e-4, cfg), atol=1e-6)
    assert not np.allclose(fused, plain, atol=1e-3)
    # a model whose config turns it on fuses by default, and False turns it off
    model.net.config = dataclasses.replace(model.config, fusion=cfg)
    on = DiffMatte(model.net)
    assert np.array_equal(on.predict(image, trimap, steps=2, seed=3), fused)
    assert np.array_equal(on.predict(image, trimap, steps=2, seed=3, fusion=False), plain)
    steps = on.predict(image, trimap, steps=2, seed=3, trajectory=True)
    assert np.array_equal(steps[-1], fused)  # the trajectory still ends at the returned matte


def test_ichol_reaches_the_answer_many_jacobi_iterations_approach() -> None:
    image, trimap, alpha = _scene()
    net = np.clip(alpha + 0.3 * (np.arange(alpha.size).reshape(alpha.shape) % 7 == 0), 0, 1)
    jacobi = fuse(image, trimap, net, 1e-4, FusionConfig(strength=1e-4, floor=1e-4, iterations=5000))
    ichol = fuse(image, trimap, net, 1e-4, FusionConfig(strength=1e-4, floor=1e-4, iterations=400,
                                                        preconditioner="ichol", tolerance=1e-8))
    assert np.abs(ichol - jacobi).max() < 1e-3
    with pytest.raises(ValueError, match="preconditioner"):
        FusionConfig(preconditioner="amg")


def test_the_solver_follows_scipys_conjugate_gradients() -> None:
    # the same recurrences as scipy.sparse.linalg.cg, with float32 products: the iterate after a
    # fixed budget (what the shipped setting uses, far from converged) stays within 1e-3
    import scipy.sparse as sp
    from scipy.sparse.linalg import cg

    from diffmatte.fusion import _jacobi_cg, matting_system

    image, trimap, alpha = _scene()
    net = np.clip(alpha + 0.3 * (np.arange(alpha.size).reshape(alpha.shape) % 5 == 0), 0, 1)
    l_uu, known = matting_system(image, trimap)
    u = trimap == 0.5
    matrix = (l_uu + sp.diags(np.full(u.sum(), 1e-4))).tocsr()
    rhs = 1e-4 * net[u] - known
    for iterations in (1, 30, 200):
        ours = _jacobi_cg(matrix, rhs, net[u], iterations, 1e-10)
        ref, _ = cg(matrix, rhs, x0=net[u], maxiter=iterations, M=sp.diags(1 / matrix.diagonal()), rtol=1e-10)
        assert np.abs(ours - ref).max() < 1e-3
        assert np.abs(ours - net[u]).max() > 1e-3  # and it moved


def test_uncertainty_with_fusion_adds_how_far_fusion_moved_the_mean() -> None:
    import torch

    from diffmatte import DiffMatte

    torch.manual_seed(0)
    model = DiffMatte.from_config("tiny_vit")
    image, trimap, _ = _scene(64, 64)
    image = image.astype(np.float32)
    cfg = FusionConfig(strength=1e-4, floor=1e-4)
    mean, std = model.predict(image, trimap, steps=2, seed=3, seeds=3, uncertainty=True, fusion=False)
    fused, u = model.predict(image, trimap, steps=2, seed=3, seeds=3, uncertainty=True, fusion=cfg)
    assert np.allclose(u, np.sqrt(std**2 + (fused - mean) ** 2), atol=1e-5)
    assert (u >= std - 1e-6).all() and (u > std + 1e-3).any()
    assert (u[trimap != 0.5] == 0).all()


def test_a_system_solved_exactly_between_two_residual_checks_stops_cleanly() -> None:
    import scipy.sparse as sp

    from diffmatte.fusion import _jacobi_cg

    matrix = sp.csr_matrix(np.diag([2.0, 3.0, 4.0]))  # Jacobi solves a diagonal system in one step
    rhs = np.array([2.0, 3.0, 4.0])
    assert np.allclose(_jacobi_cg(matrix, rhs, np.zeros(3), 50, 1e-30), [1.0, 1.0, 1.0])


def test_a_warm_start_moves_where_cg_begins_not_what_it_solves() -> None:
    # start= only changes CG's first iterate: from the answer itself nothing moves, and a solve
    # run long enough reaches the same answer from anywhere; the right-hand side stays the network's
    image, trimap, alpha = _scene()
    net = np.clip(alpha + 0.2 * (np.arange(alpha.size).reshape(alpha.shape) % 3 == 0), 0, 1)
    config = FusionConfig(strength=1e-4, floor=1e-4, iterations=4000, tolerance=1e-12)
    solved = fuse(image, trimap, net, 1e-4, config)
    from_elsewhere = fuse(image, trimap, net, 1e-4, config, start=np.full(net.shape, 0.5))
    assert np.abs(from_elsewhere - solved).max() < 1e-3
    one_step = FusionConfig(strength=1e-4, floor=1e-4, iterations=1)
    assert np.abs(fuse(image, trimap, net, 1e-4, one_step, start=solved) - solved).max() < 1e-3
    assert np.abs(fuse(image, trimap, net, 1e-4, one_step) - solved).max() > 1e-2
