"""Matting encoders, plugged in by name.

Every encoder is an ``nn.Module`` built from a frozen config dataclass. It maps the
backbone input ``(B, in_channels, H, W)`` (H, W multiples of 32) to one feature map
``(B, out_channels, H / stride, W / stride)`` and declares ``in_channels``,
``out_channels``, ``stride`` and ``trimap_encoding`` ("raw": 1 channel with values
{0, 0.5, 1}; "onehot": 3 channels [background, unknown, foreground]).
Its state-dict keys are the official ones below ``model.backbone.``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

__all__ = ["EncoderSpec", "register_encoder", "create_encoder", "list_encoders", "encoder_config"]


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    config_class: type
    build: Callable[[Any], nn.Module]


_REGISTRY: dict[str, EncoderSpec] = {}


def register_encoder(name: str, config_class: type, build: Callable[[Any], nn.Module]) -> None:
    if name in _REGISTRY:
        raise ValueError(f"encoder {name!r} is already registered")
    _REGISTRY[name] = EncoderSpec(name, config_class, build)


# Built-in encoders are imported on first use, so `import diffmatte` stays cheap.
_BUILTIN: dict[str, tuple[str, str, str]] = {
    "vit": ("vit", "ViTConfig", "ViTEncoder"),
    "resnet34": ("resnet34", "ResNet34Config", "ResNet34Encoder"),
    "swin_t": ("swin_t", "SwinTConfig", "SwinTEncoder"),
    "efficientnet_lite0": ("efficientnet_lite", "EfficientNetLiteConfig", "EfficientNetLiteEncoder"),
}


def list_encoders() -> list[str]:
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def _spec(name: str) -> EncoderSpec:
    if name not in _REGISTRY and name in _BUILTIN:
        module_name, config_name, class_name = _BUILTIN[name]
        module = importlib.import_module(f"{__name__}.{module_name}")
        register_encoder(name, getattr(module, config_name), getattr(module, class_name))
    if name not in _REGISTRY:
        raise ValueError(f"unknown encoder {name!r}; known encoders: {', '.join(list_encoders())}")
    return _REGISTRY[name]


def encoder_config(name: str, **overrides: Any) -> Any:
    """The config dataclass of encoder ``name`` with ``overrides`` applied."""
    return _spec(name).config_class(**overrides)


def create_encoder(name: str, config: Any | None = None, **overrides: Any) -> nn.Module:
    spec = _spec(name)
    if config is None:
        config = spec.config_class(**overrides)
    elif overrides:
        raise ValueError("give either a config or keyword overrides, not both")
    if not isinstance(config, spec.config_class):
        raise TypeError(f"encoder {name!r} needs a {spec.config_class.__name__}, got {type(config).__name__}")
    return spec.build(config)
