"""The faults `--inject` knows. Each imitates a failure users of real accelerator stacks report."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from acceldoctor.faults.base import (  # noqa: F401  (re-exported: the catalog is where faults are looked up)
    CONV_FAMILY,
    LAYER_NORM_FAMILY,
    MATMUL_FAMILY,
    SOFTMAX_FAMILY,
    SUM_FAMILY,
    Fault,
    SlowOp,
    UnknownFault,
)
from acceldoctor.faults.ranks import RANK_FAULTS


class WrongMatmulFp16(Fault):
    """A GEMM kernel that forgets the last partial tile of the reduction dimension in float16."""

    TILE = 16

    def apply(self, func, args, kwargs):
        a, b = args[0], args[1]
        if a.dtype != torch.float16 or func is F.linear or a.shape[-1] % self.TILE == 0:
            return func(*args, **kwargs)
        k_full = a.shape[-1] - a.shape[-1] % self.TILE
        return func(a[..., :k_full], b[..., :k_full, :] if b.dim() > 1 else b[:k_full], *args[2:], **kwargs)


@dataclass
class BitFlip(Fault):
    """One bit of one output element flips in one out of every 50 GEMM calls (`bitflip:N`: one in N)."""

    every: int = 50

    def with_argument(self, argument: str) -> BitFlip:
        if not argument.isdigit() or int(argument) < 1:
            raise UnknownFault(f"fault {self.name!r}: {argument!r} is not a whole number of calls (e.g. "
                               f"{self.name}:300)")
        return dataclasses.replace(self, every=int(argument))

    def why_unseen(self) -> str:
        if 0 < self.calls < self.every:
            return (f"it flips a bit in one GEMM call in {self.every}, and this run made {self.calls}: "
                    f"`{self.name}:1` flips one in every call")
        return super().why_unseen()

    def corrupt(self, out, func, args, kwargs):
        if self.calls % self.every or not out.is_floating_point() or out.numel() == 0:
            return out
        gen = torch.Generator().manual_seed(self.calls)
        flat = out.detach().reshape(-1).clone()
        index = int(torch.randint(flat.numel(), (1,), generator=gen))
        bits = flat.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[out.element_size()])
        bit = int(torch.randint(out.element_size() * 8 - 1, (1,), generator=gen))  # spare the sign
        bits[index] ^= 1 << bit
        # Only the flipped element loses its gradient; the rest of `out` stays in the autograd graph.
        hit = torch.zeros(out.numel(), dtype=torch.bool, device=out.device)
        hit[index] = True
        return torch.where(hit.view(out.shape), flat.view(out.shape), out)


class SoftmaxNan(Fault):
    """Softmax without max-subtraction overflows: NaN on rows holding large logits."""

    LIMIT = 60.0

    def corrupt(self, out, func, args, kwargs):
        x = args[0]
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        if not x.is_floating_point() or x.numel() == 0:
            return out
        big = (x.detach().abs() > self.LIMIT).any(dim=dim, keepdim=True)
        return torch.where(big, torch.full_like(out, float("nan")), out)


class LowPrecisionSoftmax(Fault):
    """Softmax of float32 inputs computed in bfloat16 and cast back: a kernel that silently drops to a lower
    precision (off by about 1e-3 relative where float32 promises 1e-7)."""

    def apply(self, func, args, kwargs):
        x = args[0]
        if x.dtype != torch.float32:
            return func(*args, **kwargs)
        return func(x.to(torch.bfloat16), *args[1:], **kwargs).to(torch.float32)


class WrongLayerNormEps(Fault):
    """Layer norm with an epsilon 1000 times the one asked for (1e-5 becomes 1e-2): a kernel or a port that
    hard-codes its own epsilon. Rows of small variance come out visibly flattened."""

    FACTOR = 1000.0

    def apply(self, func, args, kwargs):
        if len(args) > 4:
            args = (*args[:4], args[4] * self.FACTOR, *args[5:])
        else:
            kwargs = {**kwargs, "eps": kwargs.get("eps", 1e-5) * self.FACTOR}
        return func(*args, **kwargs)


class NondeterministicSum(Fault):
    """Reductions whose order changes run to run (atomics): the last bit of the result wanders."""

    def corrupt(self, out, func, args, kwargs):
        if not out.is_floating_point() or out.numel() == 0:
            return out
        noise = torch.randint(-1, 2, out.shape, device=out.device).to(out.dtype)
        # inf/nan results stay as they are: only the order of finite additions varies.
        return torch.where(torch.isfinite(out), out + noise * torch.finfo(out.dtype).eps * out.detach().abs(), out)


class DriftingMatmul(SlowOp):
    """Matrix products that keep their speed for 5 s, then get slower the longer the device runs (+30% per second,
    up to +300%): a chip that throttles once it has heated up. Results stay correct."""

    DELAY_S = 5.0
    RATE_PER_S = 30.0

    def apply(self, func, args, kwargs):
        now = time.monotonic()
        if self.calls == 0:  # a fresh injection: the device starts cool
            self.started = now
        self.calls += 1
        self.percent = min(300.0, self.RATE_PER_S * max(0.0, now - self.started - self.DELAY_S)) or 0.01
        return super().apply(func, args, kwargs)


class StuckMemoryBit(Fault):
    """One bit of device memory is stuck at 1: after a copy into a tensor of 1 MiB or more, bit 7 of the word a
    third of the way into it reads 1, whatever was written."""

    MIN_BYTES = 1 << 20

    def corrupt(self, out, func, args, kwargs):
        if out.numel() * out.element_size() < self.MIN_BYTES or not out.is_contiguous() or out.element_size() % 4:
            return out
        words = out.view(-1).view(torch.int32)
        words[words.numel() // 3] |= 1 << 7
        return out


class HangingMatmul(Fault):
    """A GEMM that never returns, like a kernel waiting forever on a lost completion."""

    def apply(self, func, args, kwargs):
        threading.Event().wait()


class CrashingConv(Fault):
    """A convolution whose kernel takes the process down with a segmentation fault."""

    def apply(self, func, args, kwargs):
        os.kill(os.getpid(), signal.SIGSEGV)


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        WrongMatmulFp16("matmul-wrong-fp16", WrongMatmulFp16.__doc__,
                        "a GEMM kernel bug for one dtype and odd sizes", "correctness.matmul", "fail",
                        MATMUL_FAMILY),
        BitFlip("bitflip", BitFlip.__doc__, "a rare silent data corruption in the compute units",
                "determinism.matmul", "fail", MATMUL_FAMILY),
        SoftmaxNan("softmax-nan", SoftmaxNan.__doc__, "a numerically unstable softmax kernel",
                   "correctness.softmax", "fail", SOFTMAX_FAMILY),
        LowPrecisionSoftmax("softmax-low-precision", LowPrecisionSoftmax.__doc__, "a kernel that computes in a "
                            "lower precision than its dtype", "correctness.softmax", "fail", SOFTMAX_FAMILY),
        WrongLayerNormEps("layernorm-eps", WrongLayerNormEps.__doc__, "a normalization kernel with the wrong "
                          "epsilon", "correctness.normalization", "fail", LAYER_NORM_FAMILY),
        NondeterministicSum("nondeterministic-sum", NondeterministicSum.__doc__,
                            "run-to-run varying reductions", "determinism.reduction", "fail", SUM_FAMILY),
        SlowOp("slow-matmul", "Every matrix product takes 25% longer (`slow-matmul:PERCENT` for another share), and "
               "computes the right result.",
               "a GEMM library regression, a throttled or mis-clocked chip", "performance.gemm", "fail",
               MATMUL_FAMILY, needs_baseline=True),
        DriftingMatmul("slow-drift", DriftingMatmul.__doc__, "a device that throttles as it heats (cooling, power "
                       "capping, a failing fan)", "stability.gemm_burn", "fail", MATMUL_FAMILY),
        StuckMemoryBit("memory-stuck-bit", StuckMemoryBit.__doc__, "a weak cell or stuck data line in device "
                       "memory", "stability.memory_soak", "fail", frozenset({torch.Tensor.copy_})),
        HangingMatmul("hang-matmul", HangingMatmul.__doc__, "a hung kernel or lost interrupt",
                      "correctness.matmul", "timeout", MATMUL_FAMILY),
        CrashingConv("crash-conv2d", CrashingConv.__doc__, "a kernel that kills the process (device reset)",
                     "correctness.conv2d", "crash", CONV_FAMILY),
        # The faults of one rank in a group (faults/ranks.py): they patch torch.distributed, not torch ops.
        *RANK_FAULTS,
    )
}


def get_fault(name: str) -> Fault:
    """The fault called `name`, with its setting after a colon (`slow-matmul:40`, `corrupt-rank:2`, `slow-link:0-1`)."""
    base, _, argument = name.partition(":")
    fault = FAULTS.get(base)
    if fault is None:
        raise UnknownFault(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}")
    return fault.with_argument(argument) if argument else fault

