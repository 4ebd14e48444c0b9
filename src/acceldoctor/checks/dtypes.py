"""Which floating dtypes a device computes in, and their rounding characteristics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DtypeVariant:
    """A way of computing: a storage dtype, plus TF32 math for the `tf32` variant."""

    name: str
    dtype: torch.dtype
    eps: float  # machine epsilon of the arithmetic actually used
    tf32: bool = False

    @property
    def mantissa_bits(self) -> int:
        # eps = 2**-mantissa_bits
        return round(-torch.log2(torch.tensor(self.eps)).item())

    def math_mode(self) -> contextlib.AbstractContextManager[None]:
        """Reduced-precision fp32 math (TF32 on NVIDIA, HF32 on Ascend) on for the tf32 variant only."""
        return float32_math(reduced=self.tf32)


# Switches that let fp32 matmuls/convolutions run with a 10-bit mantissa, by backend. Some default to on
# (cuDNN's conv TF32, Ascend's conv HF32), so fp32 is only IEEE fp32 when every one of them is off.
# torch >= 2.9 has per-backend `fp32_precision` strings and refuses to mix them with the legacy booleans.
_PRECISION_SWITCHES = (("backends.cuda.matmul", "fp32_precision"), ("backends.cudnn.conv", "fp32_precision"))
_LEGACY_SWITCHES = (("backends.cuda.matmul", "allow_tf32"), ("backends.cudnn", "allow_tf32"))
_VENDOR_SWITCHES = (("npu.matmul", "allow_hf32"), ("npu.conv", "allow_hf32"))


def _resolve(path: str):
    obj = torch
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _switches(reduced: bool) -> list[tuple[object, str, object]]:
    """(owner, attribute, value to set) for every switch this torch has."""
    new_api = _resolve("backends.cuda.matmul") is not None and hasattr(torch.backends.cuda.matmul, "fp32_precision")
    chosen = [(p, a, "tf32" if reduced else "ieee") for p, a in _PRECISION_SWITCHES] if new_api else \
        [(p, a, reduced) for p, a in _LEGACY_SWITCHES]
    chosen += [(p, a, reduced) for p, a in _VENDOR_SWITCHES]
    return [(owner, attr, value) for path, attr, value in chosen
            if (owner := _resolve(path)) is not None and hasattr(owner, attr)]


@contextlib.contextmanager
def float32_math(reduced: bool) -> Iterator[None]:
    """Set every known reduced-precision fp32 switch on (`reduced`) or off for the duration, then restore."""
    saved = []
    for owner, attr, value in _switches(reduced):
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)
    try:
        yield
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)


FP32 = DtypeVariant("float32", torch.float32, torch.finfo(torch.float32).eps)
BF16 = DtypeVariant("bfloat16", torch.bfloat16, torch.finfo(torch.bfloat16).eps)
FP16 = DtypeVariant("float16", torch.float16, torch.finfo(torch.float16).eps)
TF32 = DtypeVariant("tf32", torch.float32, 2.0**-10, tf32=True)
FP64 = DtypeVariant("float64", torch.float64, torch.finfo(torch.float64).eps)


def _computes_in(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the device runs a matmul in `dtype` at all; whether it is right is the checks' job."""
    from acceldoctor.faults import suspended

    try:
        with suspended():
            a = torch.ones(4, 4, dtype=dtype, device=device)
            (a @ a).cpu()
        return True
    except (RuntimeError, TypeError, NotImplementedError):
        return False


def _has_tf32(device: torch.device) -> bool:
    if device.type != "cuda" or getattr(torch.version, "hip", None):
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def supported_variants(device: torch.device, include_tf32: bool = True) -> list[DtypeVariant]:
    """fp32, bf16, fp16 where the device computes them; TF32 where the hardware has it."""
    variants = [v for v in (FP32, BF16, FP16) if _computes_in(device, v.dtype)]
    if include_tf32 and _has_tf32(device):
        variants.append(TF32)
    return variants
