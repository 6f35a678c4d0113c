"""DiffMatte: the matting pipeline a user holds. Network + diffusion + known-region fix.

Example:
    >>> from diffmatte import DiffMatte
    >>> model = DiffMatte.from_checkpoint("ViTS_1024.pth")          # doctest: +SKIP
    >>> alpha = model.predict("image.png", "trimap.png", steps=10)  # doctest: +SKIP
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from . import checkpoint as ckpt
from .diffusion.sampler import GaussianDiffusion, SamplerName, StepCallback
from .errors import CheckpointError, InputError
from .fusion import FusionConfig, fuse_matte
from .io import DEFAULT_MAX_PIXELS, load_pair, read_alpha, warn_user
from .models.configuration import DiffMatteConfig, get_preset
from .models.fast_decoder import FAST, PLAIN, InferenceOptions
from .models.modeling_diffmatte import DiffMatteNet, EncodedImage
from .models.network import Network, TorchNetwork
from .runtime import Precision, PrecisionChoice, cpu_has_fast_bf16
from .transforms import check_trimap_values
from .upsample import GuidedUpsampler, downscale_image, downscale_trimap, working_shape

__all__ = ["FAST", "PLAIN", "DiffMatte", "InferenceOptions", "MattingOutput", "Precision", "write_known_regions"]


@dataclass
class MattingOutput:
    alpha: Tensor  # (B, 1, H, W) float32 in [0, 1], known trimap regions written
    alpha_raw: Tensor  # (B, 1, H, W) the sampler's alpha before the trimap is written
    pred_x0_steps: list[Tensor] = field(default_factory=list)  # (B, 1, H, W) in [-1, 1], per step
    x_in_steps: list[Tensor] = field(default_factory=list)  # network input per step
    features: Tensor | None = None  # encoder output on the padded input


def write_known_regions(alpha: Tensor, trimap: Tensor, official: bool = False) -> Tensor:
    """Set trimap background to 0 and foreground to 1.

    ``official=True`` reproduces the official code, whose foreground test never holds
    (it compares a {0, 0.5, 1} trimap with 2), so only the background is written.
    """
    out = alpha.clone()
    out[trimap == 0] = 0.0
    if not official:
        out[trimap == 1] = 1.0
    return out


def _init_matte(init: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A warm start's matte as (H, W) float32 in [0, 1], checked against the trimap's shape."""
    arr = np.asarray(init)
    if arr.shape != tuple(shape):
        raise InputError(f"init must be an (H, W) matte of the image's size {tuple(shape)}, got {arr.shape}")
    return read_alpha(arr, max_pixels=None, name="init")


class DiffMatte:
    """A DiffMatte model ready to matte images."""

    def __init__(
        self,
        net: DiffMatteNet | Network,
        diffusion: GaussianDiffusion | None = None,
        precision: PrecisionChoice | None = None,
        options: InferenceOptions = FAST,
    ) -> None:
        """``net``: torch weights (a :class:`DiffMatteNet`) or any
        :class:`~diffmatte.models.network.Network` (an ONNX export's, for one).

        ``precision="bf16"`` runs the networks under bfloat16 autocast (CPUs with bf16
        matrix units do it several times faster); the sampler's arithmetic stays float32.
        ``"auto"`` picks bf16 where this device multiplies it natively, else fp32
        (:func:`diffmatte.runtime.resolve_precision`); ``self.precision`` is the one chosen.
        None: fp32 for torch weights, a ``Network``'s own precision for a ``Network``.
        ``options`` are the torch decoder's speed paths (:class:`InferenceOptions`; ``PLAIN``
        turns them all off); they change time and memory, not results.

        A ``DiffMatteNet`` is used as it is given: sampling runs it in eval mode and puts back
        the mode it had, and its weights are never converted (the fast path keeps its own
        copies). For CPU speed, call :func:`diffmatte.runtime.keep_freed_memory` once per
        process (the command line does).
        """
        if isinstance(net, DiffMatteNet):
            self.network: Network = TorchNetwork(net, precision or "fp32", options)
        else:
            self.network = net if precision is None else net.with_precision(precision)
        self.net = net
        self.precision: Precision = self.network.precision
        self.diffusion = diffusion or GaussianDiffusion(self.config.diffusion)
        if self.precision == "bf16" and self.device.type == "cpu" and not cpu_has_fast_bf16():
            warn_user(
                "precision bf16: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX), so bf16 is "
                "emulated and slower than fp32 here; use fp32"
            )

    @property
    def config(self) -> DiffMatteConfig:
        return self.network.config

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, config: DiffMatteConfig | str, precision: PrecisionChoice = "fp32", options: InferenceOptions = FAST
    ) -> "DiffMatte":
        """A randomly initialised model (for training or tests) from a config or preset name."""
        if isinstance(config, str):
            config = get_preset(config)
        return cls(DiffMatteNet(config).eval(), precision=precision, options=options)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        preset: str | None = None,
        device: str | torch.device | None = None,
        precision: PrecisionChoice = "fp32",
        options: InferenceOptions = FAST,
    ) -> "DiffMatte":
        """Load an official ``.pth`` or a diffmatte ``.safetensors`` file, strictly, or run a
        folder written by `diffmatte export` with onnxruntime.

        The preset is taken from ``preset``, else the config stored in the file, else
        inferred from the keys and shapes. ``device`` None: the CPU for torch weights; for
        an ONNX export, onnxruntime's CUDA provider when it has one, else the CPU.
        """
        if os.path.isdir(path):
            from .onnx.network import OnnxNetwork  # imports onnxruntime: only for an export

            return cls(OnnxNetwork(path, device=device, preset=preset, precision=precision))
        device = "cpu" if device is None else device
        sd, stored = ckpt.read_state_dict(path)
        config = ckpt.config_for(sd, preset, stored)
        net = DiffMatteNet(config)
        ckpt.load_into(net, sd, config.name)
        return cls(net.to(device).eval(), precision=precision, options=options)

    def with_precision(self, precision: PrecisionChoice) -> "DiffMatte":
        """This pipeline's network (shared, not copied) run in ``precision``."""
        network = self.network.with_precision(precision)
        return self if network is self.network else DiffMatte(network, self.diffusion)

    def save(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(self.net, DiffMatteNet):
            raise CheckpointError("an ONNX export holds no torch weights to save; export again from the checkpoint")
        ckpt.save_safetensors(self.net, self.config, path)

    @property
    def device(self) -> torch.device:
        return self.network.device

    # -- tensor-level API ---------------------------------------------------------------------
    @torch.inference_mode()
    def sample(
        self,
        image: Tensor,
        trimap: Tensor,
        steps: int = 10,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: SamplerName = "ddim",
        official_postprocess: bool = False,
        trajectory: bool = False,
        on_step: StepCallback | None = None,
        init: Tensor | None = None,
        start: float = 1.0,
    ) -> MattingOutput:
        """Matte a batch. image (B, 3, H, W) RGB in [0, 1]; trimap (B, 1, H, W) in {0, 0.5, 1}.

        ``noise`` is x_T (B, 1, H, W); when absent it is drawn from ``generator``. A noise batch of
        K x B samples each image K times on one encoding (rows b * K .. b * K + K - 1 are image b's).
        ``on_step(k, x0_hat)`` is called after every step (see GaussianDiffusion.sample).
        ``init`` (B, 1, H, W) alpha in [0, 1] and ``start`` in (0, 1): a warm start, ``steps``
        steps from time ``start`` where x is ``init`` noised with ``noise`` (e.g. the previous
        video frame's matte, moved to this frame).
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        if trimap.dim() != 4 or trimap.shape[1] != 1 or trimap.shape[0] != image.shape[0]:
            raise InputError(f"trimap must be (B, 1, H, W) matching image {tuple(image.shape)}, got {tuple(trimap.shape)}")
        if trimap.shape[-2:] != image.shape[-2:]:
            raise InputError(f"trimap size {tuple(trimap.shape[-2:])} differs from image size {tuple(image.shape[-2:])}")
        check_trimap_values(trimap)
        dev = self.device
        image, trimap = image.to(dev, torch.float32), trimap.to(dev, torch.float32)
        if noise is None:
            noise = torch.randn(trimap.shape, generator=generator, dtype=torch.float32, device="cpu").to(dev)
        elif noise.shape[1:] != trimap.shape[1:] or noise.shape[0] % trimap.shape[0]:
            raise InputError(f"noise must have the trimap's shape {tuple(trimap.shape)} (or a multiple of its batch: "
                             f"several samples of each image), got {tuple(noise.shape)}")
        repeats = noise.shape[0] // trimap.shape[0]
        x_start = noise.to(dev, torch.float32)
        if init is not None:
            if init.shape != trimap.shape:
                raise InputError(f"init must have the trimap's shape {tuple(trimap.shape)}, got {tuple(init.shape)}")
            if not 0.0 < start < 1.0:
                raise InputError(f"a warm start needs a start time in (0, 1), got {start!r}")
            x0 = init.to(dev, torch.float32).clamp(0.0, 1.0).mul(2.0).sub(1.0).repeat_interleave(repeats, 0)
            x_start = self.diffusion.q_sample(x0, torch.full((x0.shape[0],), start, device=dev), x_start)
        elif start != 1.0:
            raise InputError(f"start < 1 needs init (the matte to start from), got start={start!r}")
        with self.network.session():
            encoded = self.network.encode(image, trimap)
            if repeats > 1:
                # several samples of each image from one encoding: sample i of image b is row b * repeats + i
                encoded = EncodedImage(encoded.features.repeat_interleave(repeats, 0),
                                       encoded.condition.repeat_interleave(repeats, 0), encoded.size)
                trimap = trimap.repeat_interleave(repeats, 0)

            def denoise(x_in: Tensor, t: Tensor) -> Tensor:
                return self.network.denoise(encoded, x_in, t)

            result = self.diffusion.sample(
                denoise,
                x_start,
                steps,
                sampler=sampler,
                generator=generator,
                keep_trajectory=trajectory,
                on_step=on_step,
                start=start,
            )
        alpha = write_known_regions(result.alpha, trimap, official=official_postprocess)
        return MattingOutput(
            alpha=alpha,
            alpha_raw=result.alpha,
            pred_x0_steps=result.pred_x0_steps,
            x_in_steps=result.x_in_steps,
            features=encoded.features.float(),
        )

    # -- array-level API ----------------------------------------------------------------------
    def predict(
        self,
        image: Any,
        trimap: Any,
        steps: int = 10,
        seed: int | None = None,
        *,
        trajectory: bool = False,
        sampler: SamplerName = "ddim",
        official_postprocess: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        working_megapixels: float | None = None,
        flip_tta: bool = False,
        on_step: Callable[[int, np.ndarray], None] | None = None,
        fusion: FusionConfig | bool | None = None,
        seeds: int = 1,
        uncertainty: bool = False,
        init: np.ndarray | None = None,
        start: float = 1.0,
        snap: float | None = None,
    ) -> Any:
        """Alpha matte for one image.

        Args:
            image: path, PIL image or array (H, W, 3) uint8 / float in [0, 1] (see diffmatte.io
                for every accepted form). The EXIF orientation of files is applied.
            trimap: path, PIL image or array (H, W): 0 background, 255 (or 1.0) foreground,
                anything else unknown. Must have the image's size.
            steps: sampler steps.
            seed: the same seed gives the same matte; None draws fresh noise.
            trajectory: return every step's x0 estimate instead of the final matte only.
            max_pixels: refuse images with more pixels (None: no limit).
            working_megapixels: matte images larger than this at this size and bring the matte back
                to full size with a guided upsampler (diffmatte.upsample); the known trimap regions
                are then written at full resolution. None: the model's own
                (``config.working_megapixels``; 0 for official checkpoints); 0: full resolution.
            flip_tta: also matte the mirrored image (from the mirrored noise) and average the two:
                twice the time (the two run as one batch of 2).
            on_step: called after step k (0-based) with that step's x0 estimate as an (H, W)
                float32 matte, known regions written (the frame ``trajectory`` would hold);
                an exception it raises stops the run.
            fusion: fuse closed-form's colour model with the final matte at the working size
                (diffmatte.fusion; not the per-step frames). None: the model's own
                (``config.fusion``; off for official checkpoints); True: the model's or the
                defaults; False: off; a FusionConfig: that. With ``seeds > 1`` its weights follow
                the seeds' spread (``FusionConfig.floor``, ``spread_scale``).
            seeds: sample the matte this many times (seeds ``seed``'s generator draws them in one
                batch, on one encoding) and return their mean.
            uncertainty: also return where the matte is unsure, (H, W) float32, exactly 0 on known
                pixels: ``(alpha, uncertainty)``. It is the seeds' per-pixel standard deviation,
                and with fusion the root of its square plus the square of how far fusion moved
                the seeds' mean. Needs ``seeds >= 2``.
            init: a warm start: an (H, W) matte in [0, 1] to begin from (e.g. the previous video
                frame's, moved to this one), noised to time ``start``; ``steps`` then span
                ``start`` -> 0. None: the usual start from pure noise.
            start: the warm start's time in (0, 1); small keeps more of ``init``.
            snap: the final matte's unknown pixels below this become 0 and above 1 - this become
                1 (not the per-step frames). None: the model's own (``config.snap``; 0 = off for
                official checkpoints).

        Returns:
            (H, W) float32 in [0, 1]; with ``trajectory=True``, (steps, H, W) float32 in [0, 1]
            whose entry i is the x0 estimate after step i + 1 with the known regions written, and
            whose last entry is the matte returned without ``trajectory``; with ``uncertainty``,
            the pair (matte, standard deviation).

        Raises:
            InputError: unreadable input, a side below 32 px, more than ``max_pixels`` pixels,
                or an image/trimap size mismatch.
        """
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise InputError(f"seeds must be a whole number >= 1, got {seeds!r}")
        if uncertainty and seeds < 2:
            raise InputError("uncertainty needs seeds >= 2 (it is the spread of several samples)")
        if seeds > 1 and (flip_tta or trajectory):
            raise InputError("seeds > 1 cannot be combined with flip_tta or trajectory")
        snap = self.config.snap if snap is None else snap
        if not 0 <= snap < 0.5:
            raise InputError(f"snap must lie in [0, 0.5) (0 = off), got {snap}")
        img_arr, tri_arr = load_pair(image, trimap, max_pixels=max_pixels)
        init_arr = None if init is None else _init_matte(init, tri_arr.shape)
        img = torch.from_numpy(np.ascontiguousarray(img_arr.transpose(2, 0, 1)))[None]
        tri = torch.from_numpy(tri_arr)[None, None]
        if not bool((tri == 0.5).any()):
            # Nothing to estimate: the trimap already is the matte.
            known = tri_arr.astype(np.float32)
            if on_step is not None:
                for k in range(steps):
                    on_step(k, known)
            if uncertainty:
                return known, np.zeros_like(known)
            return np.repeat(known[None], steps, axis=0) if trajectory else known
        if not bool((tri != 0.5).any()):
            warn_user("the trimap has no known pixels (no 0 or 255): matting still runs, but the quality is lower")
        megapixels = self.config.working_megapixels if working_megapixels is None else working_megapixels
        if megapixels < 0:
            raise InputError(f"working_megapixels must be >= 0 (0 = full resolution), got {megapixels}")
        low = working_shape(*tri_arr.shape, megapixels)
        upsample = None  # matting at full size: nothing to bring back
        if low != tri_arr.shape:
            img_low = downscale_image(img_arr, low)
            upsample = GuidedUpsampler(img_low, img_arr)
            full_tri = torch.from_numpy(tri_arr)[None, None]
            img = torch.from_numpy(np.ascontiguousarray(img_low.transpose(2, 0, 1)))[None]
            tri = torch.from_numpy(downscale_trimap(tri_arr, low))[None, None]
            if init_arr is not None:
                init_arr = np.array(Image.fromarray(init_arr, mode="F").resize(low[::-1], Image.BILINEAR))
        init_t = None if init_arr is None else torch.from_numpy(np.ascontiguousarray(init_arr))[None, None]
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        if flip_tta:
            # The mirrored copy starts from the mirrored noise: it is the same sample seen in a
            # mirror, so the two differ only by what the network does differently on mirrored input.
            noise = torch.randn(tri.shape, generator=generator, dtype=torch.float32)
            img, tri, noise = (torch.cat([x, x.flip(-1)]) for x in (img, tri, noise))
            if init_t is not None:
                init_t = torch.cat([init_t, init_t.flip(-1)])
        elif seeds > 1:
            noise = torch.randn((seeds, *tri.shape[1:]), generator=generator, dtype=torch.float32)
        else:
            noise = None
        spread: list[np.ndarray] = []  # the seeds' std at the working size, once the final matte is made

        def frame(x0: Tensor) -> Tensor:
            known = tri.to(x0.device).expand(x0.shape[0], -1, -1, -1)  # one trimap for the seeds' rows
            return write_known_regions(((x0 + 1.0) * 0.5).clamp(0.0, 1.0), known, official_postprocess)

        fuse_with = self.fusion_config(fusion)
        img_np, tri_np = img[0].numpy().transpose(1, 2, 0), tri[0, 0].numpy()

        def merge(batch: Tensor, final: bool = False) -> np.ndarray:
            """(B, 1, h, w) with known regions -> the full-size (H, W) matte."""
            f = batch[:, 0].float().cpu().numpy()
            if flip_tta:
                matte = 0.5 * (f[0] + f[1][:, ::-1])
            elif seeds > 1:
                matte = f.mean(axis=0)
                if final:
                    spread.append(np.where(tri_np == 0.5, f.std(axis=0), 0.0).astype(np.float32))
            else:
                matte = f[0]
            if final and fuse_with is not None:
                fused = fuse_matte(img_np, tri_np, matte, spread[0] if spread else None, fuse_with)
                if spread:
                    # Where the colour model moved the seeds' mean, the network was doubtful too: on
                    # GT19-GT20 this ranks the fused matte's error far better than the spread alone
                    # (Spearman 0.91 against 0.33 on GT19; benchmarks/uncertainty.py).
                    spread[0] = np.sqrt(spread[0] ** 2 + (fused - matte) ** 2).astype(np.float32)
                matte = fused
            if upsample is None:
                return matte
            up = torch.from_numpy(upsample(matte))[None, None]
            return write_known_regions(up, full_tri, official_postprocess)[0, 0].numpy()

        report = None if on_step is None else (lambda k, x0: on_step(k, merge(frame(x0))))
        out = self.sample(
            img,
            tri,
            steps,
            noise=noise,
            generator=generator,
            sampler=sampler,
            official_postprocess=official_postprocess,
            trajectory=trajectory,
            on_step=report,
            init=init_t,
            start=start,
        )
        alpha = snap_faint_alpha(merge(out.alpha, final=True), tri_arr, snap)
        if uncertainty:
            std = spread[0]
            if upsample is not None:
                std = np.asarray(Image.fromarray(std, mode="F").resize(tri_arr.shape[::-1], Image.BILINEAR))
            return alpha, np.where(tri_arr == 0.5, std, 0.0).astype(np.float32)
        if not trajectory:
            return alpha
        # The last x0 is the matte itself up to rounding: made exact so the contract holds.
        return np.stack([merge(frame(x0)) for x0 in out.pred_x0_steps[:-1]] + [alpha])

    def fusion_config(self, fusion: FusionConfig | bool | None = None) -> FusionConfig | None:
        """The fusion ``predict(fusion=...)`` applies (None: none)."""
        if fusion is None:
            return self.config.fusion
        if isinstance(fusion, FusionConfig):
            return fusion
        if fusion is True:
            return self.config.fusion or FusionConfig()
        if fusion is False:
            return None
        raise InputError(f"fusion must be None, True, False or a FusionConfig, got {fusion!r}")

    def predict_batch(
        self,
        images: Sequence[Any],
        trimaps: Sequence[Any],
        steps: int = 10,
        seed: int | None = None,
        *,
        trajectory: bool = False,
        sampler: SamplerName = "ddim",
        official_postprocess: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        working_megapixels: float | None = None,
        flip_tta: bool = False,
        fusion: FusionConfig | bool | None = None,
    ) -> list[np.ndarray]:
        """Mattes for a list of images, one ``predict`` each with the same arguments.

        Images may differ in size. Each result equals ``predict(image, trimap, steps, seed)``,
        so a matte does not depend on which other images are in the list.

        Returns:
            list of (H_i, W_i) float32 in [0, 1] (with ``trajectory``: (steps, H_i, W_i)).

        Raises:
            InputError: lists of different lengths, or any input ``predict`` refuses.
        """
        if isinstance(images, (str, bytes)) or isinstance(trimaps, (str, bytes)):
            raise InputError("predict_batch takes lists of images and trimaps; use predict for one")
        images, trimaps = list(images), list(trimaps)
        if len(images) != len(trimaps):
            raise InputError(f"got {len(images)} images but {len(trimaps)} trimaps; pass one trimap per image")
        return [
            self.predict(
                image,
                trimap,
                steps,
                seed,
                trajectory=trajectory,
                sampler=sampler,
                official_postprocess=official_postprocess,
                max_pixels=max_pixels,
                working_megapixels=working_megapixels,
                flip_tta=flip_tta,
                fusion=fusion,
            )
            for image, trimap in zip(images, trimaps, strict=True)
        ]


def snap_faint_alpha(alpha: np.ndarray, trimap: np.ndarray, snap: float) -> np.ndarray:
    """``alpha`` with the unknown pixels of ``trimap`` ({0, 0.5, 1}) below ``snap`` set to 0 and
    above 1 - ``snap`` to 1 (``DiffMatteConfig.snap``; what ``predict`` does last)."""
    if snap == 0:
        return alpha
    unknown = trimap == 0.5
    out = np.where(unknown & (alpha < snap), 0.0, alpha)
    return np.where(unknown & (out > 1 - snap), 1.0, out).astype(np.float32)
