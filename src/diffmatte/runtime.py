"""Process-level settings that make CPU inference fast (threads and the glibc allocator), and
the one spelling of the arithmetic precision.

glibc serves every allocation of 32 MiB or more with a fresh mmap and unmaps it on free,
so each sampling step's activations (hundreds of MiB at 1024x1024) are page-faulted in
again; on the machines we measured that costs about 1 s per GiB, as much as the arithmetic.
Raising the mmap and trim thresholds lets freed blocks be reused from the heap. Every step
allocates the same sizes in the same order, so the heap does not fragment and peak memory
stays put. Done through ``mallopt`` at run time, so users get it without environment
variables; a no-op where glibc is absent.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
from typing import Any, Literal, get_args

__all__ = ["PRECISIONS", "PRECISION_CHOICES", "Precision", "PrecisionChoice", "autocast", "check_precision", "cpu_has_fast_bf16",
           "explain_precision", "keep_freed_memory", "resolve_precision", "set_threads"]

# The arithmetic the networks run in, for inference (``DiffMatte(precision=...)``, the CLI's
# ``--precision``) and training (``TrainConfig.precision``): float32, or bfloat16 autocast
# (CPUs with bf16 matrix units and recent GPUs run it several times faster; no loss scaling
# needed). Here, away from torch, so the command line can check an option without importing it.
Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
# What a user may ask for: "auto" is bf16 where the hardware multiplies it natively (a CPU with
# AVX512-BF16 or AMX, a CUDA GPU with bf16), else fp32. The default of the command line, the
# server and load_model; DiffMatte itself defaults to fp32, the arithmetic of official parity.
PrecisionChoice = Literal["auto", "fp32", "bf16"]
PRECISION_CHOICES: tuple[PrecisionChoice, ...] = get_args(PrecisionChoice)


def check_precision(precision: str, what: str = "precision") -> Precision:
    if precision not in PRECISIONS:
        raise ValueError(f"{what} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision  # type: ignore[return-value]


def resolve_precision(precision: str, device_type: str = "cpu") -> Precision:
    """``precision`` itself, or for "auto" the one that is fastest on ``device_type`` here."""
    if precision != "auto":
        return check_precision(precision)
    if device_type == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device_type == "cpu" and cpu_has_fast_bf16() else "fp32"


def autocast(device_type: str, precision: Precision) -> contextlib.AbstractContextManager[Any]:
    """The autocast context for ``precision`` on this device type (nothing for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type, dtype=torch.bfloat16)

_log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DONE = False


def keep_freed_memory(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 32) -> bool:
    """Ask glibc to reuse freed blocks up to ``mmap_threshold`` bytes; True if applied.

    Respects users who tuned the allocator themselves (MALLOC_* environment variables) and
    ``DIFFMATTE_KEEP_FREED_MEMORY=0``, which leaves glibc's defaults (for comparisons).
    """
    global _DONE
    if _DONE:
        return True
    if os.environ.get("DIFFMATTE_KEEP_FREED_MEMORY") == "0":
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_")):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # mallopt takes an int: clamp to INT_MAX.
    ok = mallopt(_M_MMAP_THRESHOLD, min(mmap_threshold, 2**31 - 1)) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, min(trim_threshold, 2**31 - 1)) == 1
    _DONE = ok
    _log.debug("glibc mallopt applied: %s", ok)
    return ok


def set_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op threads (None: PyTorch's default, one per core)."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)


def explain_precision(asked: str, chosen: str, device_type: str = "cpu") -> str:
    """One line for ``-v``: the arithmetic a run uses and why."""
    if asked != "auto":
        return f"precision {chosen} (asked for)"
    if device_type != "cpu":
        return f"precision {chosen} (auto on {device_type})"
    if chosen == "bf16":
        return "precision bf16 (auto: this CPU multiplies bfloat16 natively; --precision fp32 for exact fp32)"
    if cpu_has_fast_bf16():  # the CPU could, so the model cannot (an ONNX export has fp32 only)
        return "precision fp32 (auto: this model runs in fp32 only)"
    return "precision fp32 (auto: this CPU has no native bfloat16, AVX512-BF16 or AMX)"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX).

    Without them PyTorch emulates bf16 through fp32 conversions: on an AVX2-only CPU we
    measured a bf16 GEMM well over ten times slower than fp32.
    """
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older PyTorch: assume the user knows their CPU
        return True
