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

    @contextlib.contextmanager
    def math_mode(self) -> Iterator[None]:
        """Enable TF32 for the tf32 variant (and make sure it is off for plain fp32)."""
        if not hasattr(torch.backends, "cuda"):
            yield
            return
        saved_mm = torch.backends.cuda.matmul.allow_tf32
        saved_conv = torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = saved_mm
            torch.backends.cudnn.allow_tf32 = saved_conv


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
