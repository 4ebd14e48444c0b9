"""GEMM burn: one seeded matrix product recomputed over and over, every result compared bit for bit with the first.

As gpu-burn does: the product of fixed inputs is computed once as the golden; a deterministic kernel must give
identical bits every time, so any element that differs (or turns NaN) is silent data corruption. It runs in
float32 and, on accelerators, in the device's fast dtype (bfloat16 or float16), whose units are separate silicon.
"""

from __future__ import annotations

import torch

from acceldoctor.stress.workloads.base import Tally, Workload

# The dtype whose matrix units an accelerator type is built around; the CPU has none faster than float32 (this
# 2-core VM runs bfloat16 products 35x slower than float32), so it burns float32 only.
FAST_DTYPES = {"cuda": (torch.bfloat16, torch.float16), "npu": (torch.float16, torch.bfloat16),
               "xpu": (torch.bfloat16, torch.float16), "mps": (torch.float16,)}


def burn_size(device: torch.device) -> int:
    """A product large enough to keep the device busy, small enough to iterate many times per interval."""
    return 512 if device.type == "cpu" else 8192


def seeded_operands(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same two n x n float32 matrices on every device and in every process (drawn on the CPU)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, n, generator=generator), torch.randn(n, n, generator=generator)


def fast_dtype(device: torch.device) -> torch.dtype | None:
    """The first of the device type's fast dtypes that its matrix units run natively, or None (the CPU)."""
    from acceldoctor.checks.dtypes import supported_variants

    supported = {v.dtype for v in supported_variants(device, include_tf32=False)}
    candidates = FAST_DTYPES.get(device.type, ())
    if device.type == "cuda" and getattr(torch.version, "hip", None) is None and \
            torch.cuda.get_device_capability(device)[0] < 8:
        candidates = (torch.float16,)  # before Ampere, bfloat16 is emulated: the tensor cores are float16's
    return next((d for d in candidates if d in supported), None)


class GemmBurn(Workload):
    check = "stability.gemm_burn"
    unit = "TFLOP/s"
    unit_scale = 1e12

    def __init__(self, device: torch.device, dtype: torch.dtype = torch.float32, *, size: int | None = None,
                 seed: int = 0):
        super().__init__(device)
        self.dtype = dtype
        self.n = size or burn_size(device)
        self.seed = seed
        self.name = f"gemm_{str(dtype).removeprefix('torch.').replace('float', 'fp').replace('bfp', 'bf')}"
        self.share = 0.45 if dtype == torch.float32 else 0.25

    def describe(self) -> str:
        return f"{self.n}x{self.n} {str(self.dtype).removeprefix('torch.')} product"

    def prepare(self) -> None:
        a, b = seeded_operands(self.n, self.seed)
        self.a = a.to(device=self.device, dtype=self.dtype)
        self.b = b.to(device=self.device, dtype=self.dtype)
        self.golden = torch.mm(self.a, self.b)
        self.wrong_on_device = self.nan_on_device = None

    def step(self, tally: Tally) -> None:
        out = torch.mm(self.a, self.b)
        differs = out != self.golden  # NaN differs from everything, so it is also counted as wrong
        tally.iterations += 1
        tally.work += 2.0 * self.n**3
        if self.device.type == "cpu":  # synchronous anyway: look now, and say where
            if wrong := int(differs.sum()):
                row, col = (int(i) for i in differs.nonzero()[0])
                tally.add_errors(wrong, int(torch.isnan(out).sum()), f"{self.name} element ({row}, {col})")
            return
        # Summed on the device: reading the count every product would stall an accelerator between products.
        wrong = differs.sum()
        self.wrong_on_device = wrong if self.wrong_on_device is None else self.wrong_on_device + wrong
        self.nan_on_device = torch.isnan(out).sum() + (0 if self.nan_on_device is None else self.nan_on_device)

    def flush(self, tally: Tally) -> None:
        if self.wrong_on_device is None:
            return
        wrong, nan = int(self.wrong_on_device), int(self.nan_on_device)
        self.wrong_on_device = self.nan_on_device = None
        if wrong:
            tally.add_errors(wrong, nan, self._where())

    def _where(self) -> str:
        """Where a product differs, from one more product (the corrupted ones were not kept)."""
        differs = torch.mm(self.a, self.b) != self.golden
        if not bool(differs.any()):
            return f"{self.name}, in a product of this interval"
        row, col = (int(i) for i in differs.nonzero()[0])
        return f"{self.name} element ({row}, {col})"
