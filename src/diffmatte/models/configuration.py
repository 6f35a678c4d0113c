"""DiffMatteConfig: which encoder, which decoder widths, which diffusion; named presets."""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from ..diffusion.sampler import DiffusionConfig
from ..encoders import encoder_config, list_encoders
from ..fusion import FusionConfig
from .dunet import DUNetConfig

__all__ = ["DiffMatteConfig", "get_preset", "list_presets", "register_preset"]


@dataclass(frozen=True)
class DiffMatteConfig:
    encoder: str
    encoder_config: Any
    decoder: DUNetConfig = field(default_factory=DUNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    name: str = "custom"
    # The image size the model was trained for, in megapixels: `predict` mattes larger images
    # at this size and upsamples the matte guided by the full image (diffmatte.upsample).
    # 0 = always full resolution (every official preset: they were trained on 512-1024 px crops
    # of 2-3 MP Composition-1k images).
    working_megapixels: float = 0.0
    # Closed-form's colour model fused with the matte at the working size (diffmatte.fusion);
    # None = off (every official preset: their outputs stay the official code's).
    fusion: FusionConfig | None = None
    # The final matte's unknown pixels below this become 0 and above 1 - this become 1: the
    # faint haze the default model leaves over the background of the unknown band (and just
    # under 1 inside the subject; benchmarks/faint_alpha.py). 0 = off (every official preset).
    snap: float = 0.0
    # The decoder also sees colour evidence from the trimap's known pixels
    # (diffmatte.models.evidence); its first layer then takes 7 + 5 channels.
    evidence: bool = False

    def __post_init__(self) -> None:
        if self.encoder not in list_encoders():
            raise ValueError(f"unknown encoder {self.encoder!r}; known encoders: {', '.join(list_encoders())}")
        if not self.working_megapixels >= 0:
            raise ValueError(f"working_megapixels must be >= 0 (0 = full resolution), got {self.working_megapixels}")
        if not 0 <= self.snap < 0.5:
            raise ValueError(f"snap must lie in [0, 0.5) (0 = off), got {self.snap}")
        channels = getattr(self.encoder_config, "embed_dim", None)
        if self.encoder == "vit" and channels != self.decoder.feature_channels:
            raise ValueError(
                f"ViT width {channels} does not match the decoder's feature width {self.decoder.feature_channels}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "encoder": self.encoder,
            "encoder_config": asdict(self.encoder_config),
            "decoder": asdict(self.decoder),
            "diffusion": asdict(self.diffusion),
            "working_megapixels": self.working_megapixels,
            "fusion": asdict(self.fusion) if self.fusion is not None else None,
            "snap": self.snap,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffMatteConfig":
        try:
            return cls(
                encoder=d["encoder"],
                encoder_config=encoder_config(d["encoder"], **_tuples(d["encoder_config"])),
                decoder=DUNetConfig(**_tuples(d["decoder"])),
                diffusion=DiffusionConfig(**d.get("diffusion", {})),
                name=d.get("name", "custom"),
                working_megapixels=float(d.get("working_megapixels", 0.0)),
                fusion=FusionConfig(**d["fusion"]) if d.get("fusion") else None,
                snap=float(d.get("snap", 0.0)),
                evidence=bool(d.get("evidence", False)),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a valid DiffMatte config ({e}): {d}") from e


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    # JSON turns tuples into lists; the frozen configs want tuples.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _vit(name: str, embed_dim: int = 384, heads: int = 6, img_size: int = 512, **vit: Any) -> DiffMatteConfig:
    return DiffMatteConfig(
        encoder="vit",
        encoder_config=encoder_config("vit", embed_dim=embed_dim, num_heads=heads, img_size=img_size, **vit),
        decoder=DUNetConfig(upsample_in=(embed_dim, 256, 128, 64, 32)),
        name=name,
    )


def _stride32(name: str, encoder: str, width: int, **enc: Any) -> DiffMatteConfig:
    return DiffMatteConfig(
        encoder=encoder,
        encoder_config=encoder_config(encoder, **enc),
        decoder=DUNetConfig(downsample_in=(7, 32, 64, 128, 128), upsample_in=(width, 256, 256, 128, 64, 32)),
        name=name,
    )


def _with_evidence(config: DiffMatteConfig) -> DiffMatteConfig:
    """``config`` whose decoder also sees the colour evidence (issue 22 item 2): its first layer
    takes 7 + 5 channels, and the weights of ``config`` widen into it (models.evidence)."""
    from .evidence import EVIDENCE_CHANNELS

    first = config.decoder.downsample_in[0] + EVIDENCE_CHANNELS
    decoder = dataclasses.replace(config.decoder, downsample_in=(first, *config.decoder.downsample_in[1:]))
    return dataclasses.replace(config, decoder=decoder, name=f"{config.name}_evidence", evidence=True)


def _build_presets() -> dict[str, DiffMatteConfig]:
    presets = {
        # the official models (configs/ViTS.py, ViTB.py, ViTS_1024.py, res34.py, swin_t.py)
        "vits": _vit("vits"),
        "vitb": _vit("vitb", embed_dim=768, heads=12),
        "vits_1024": _vit("vits_1024", img_size=1024),
        "res34": _stride32("res34", "resnet34", 512),
        "swin_t": _stride32("swin_t", "swin_t", 768),
        # CPU model: ImageNet EfficientNet-Lite0 encoder (4.7 M) and a DUNet at half the
        # Res34 widths, so a decoder step costs about a quarter of the official one.
        "lite0": DiffMatteConfig(
            encoder="efficientnet_lite0",
            encoder_config=encoder_config("efficientnet_lite0"),
            decoder=DUNetConfig(downsample_in=(7, 16, 32, 64, 64), upsample_in=(320, 128, 128, 64, 32, 16)),
            name="lite0",
        ),
        # tiny models for tests and smoke runs (seconds on a CPU, not for real mattes)
        "tiny_vit": DiffMatteConfig(
            encoder="vit",
            encoder_config=encoder_config(
                "vit", embed_dim=32, num_heads=2, depth=2, global_blocks=(1,), window_size=4, img_size=64
            ),
            decoder=DUNetConfig(downsample_in=(7, 8, 8, 16), upsample_in=(32, 16, 16, 8, 8), head_channels=8),
            name="tiny_vit",
        ),
        "tiny_res34": DiffMatteConfig(
            encoder="resnet34",
            encoder_config=encoder_config(
                "resnet34", layers=(1, 1, 1, 1), stem_widths=(8, 8, 16), stage_widths=(16, 16, 32, 32)
            ),
            decoder=DUNetConfig(downsample_in=(7, 8, 8, 16, 16), upsample_in=(32, 16, 16, 16, 8, 8), head_channels=8),
            name="tiny_res34",
        ),
    }
    for name in ("lite0", "tiny_vit"):
        evidence = _with_evidence(presets[name])
        presets[evidence.name] = evidence
    return presets


_PRESETS: dict[str, DiffMatteConfig] = {}


def _presets() -> dict[str, DiffMatteConfig]:
    if not _PRESETS:
        _PRESETS.update(_build_presets())
    return _PRESETS


def list_presets() -> list[str]:
    return list(_presets())


def get_preset(name: str) -> DiffMatteConfig:
    presets = _presets()
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(presets)}")
    return presets[name]


def register_preset(config: DiffMatteConfig) -> None:
    presets = _presets()
    if config.name in presets:
        raise ValueError(f"preset {config.name!r} already exists")
    presets[config.name] = config
