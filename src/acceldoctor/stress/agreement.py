"""Cross-device agreement: every device computes the same seeded float32 product once; each result is judged
against the float64 golden, and devices of the same model are compared bit for bit with each other.

A device whose own burn repeats its results perfectly can still be consistently wrong (a bad unit used by every
call): only a second opinion shows it. The float64 golden names the wrong device even when there are only two;
among three or more devices of one model, the odd one out in bits is named as well, since the same chip and
software must give the same bits.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections import Counter
from dataclasses import dataclass

import torch

from acceldoctor.checks.context import CheckOutcome
from acceldoctor.checks.dtypes import FP32
from acceldoctor.checks.numerics import Comparison, compare_to_golden
from acceldoctor.checks.tolerances import tolerance
from acceldoctor.report.model import Metric, Status
from acceldoctor.stress.workloads.gemm import seeded_operands

CHECK = "stability.device_agreement"
AGREEMENT_SIZE = 1024
AGREEMENT_SEED = 7


def agreement_product(device: torch.device) -> torch.Tensor:
    """The agreement product computed on `device`, brought back to the CPU (float32)."""
    a, b = seeded_operands(AGREEMENT_SIZE, AGREEMENT_SEED)
    return torch.mm(a.to(device), b.to(device)).cpu()


def raw_bytes(t: torch.Tensor) -> bytes:
    """The bits of a CPU tensor (numpy is not a dependency: torch may be installed without it)."""
    t = t.detach().cpu().contiguous()
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())


def product_from_bytes(data: bytes, shape: list[int]) -> torch.Tensor:
    """A float32 agreement product sent as raw bytes between processes (by value: a tensor would travel as a
    shared-memory handle that cannot be read once its sender has ended)."""
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(torch.float32).reshape(shape)


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(raw_bytes(t)).hexdigest()[:16]


@dataclass(frozen=True)
class _Golden:
    value: torch.Tensor
    magnitude: torch.Tensor


def _golden() -> _Golden:
    a, b = (t.double() for t in seeded_operands(AGREEMENT_SIZE, AGREEMENT_SEED))
    return _Golden(a @ b, a.abs() @ b.abs())


def judge_agreement(products: dict[str, torch.Tensor], models: dict[str, str]) -> dict[str, CheckOutcome]:
    """Per device: `fail` when its product is off the float64 golden beyond the matmul tolerance; `warn` when it is
    within tolerance but differs in bits from the majority of devices of its model; else `pass`."""
    golden = _golden()
    comparisons: dict[str, Comparison] = {
        device: compare_to_golden(product, golden.value, FP32, tolerance("matmul"), AGREEMENT_SIZE,
                                  golden.magnitude) for device, product in products.items()}
    digests = {device: digest(product) for device, product in products.items()}
    outcomes = {}
    for device, comparison in comparisons.items():
        peers = [d for d in products if d != device and models.get(d) == models.get(device)]
        metrics = [Metric(name="worst_error_to_tolerance", value=comparison.worst_ratio, unit="ratio",
                          dtype="float32", threshold=1.0),
                   Metric(name="bad_elements", value=comparison.bad_elements, unit="count", threshold=0),
                   Metric(name="devices_compared", value=len(products), unit="count")]
        agreeing = [d for d in products if d != device and comparisons[d].ok]
        if not comparison.ok:
            others = (f"; {', '.join(agreeing)} agree{'s' if len(agreeing) == 1 else ''} with the golden"
                      if agreeing else "")
            outcomes[device] = CheckOutcome(
                Status.FAIL, f"{device} is the odd device out: its float32 product is wrong in "
                f"{comparison.bad_elements} of {comparison.elements} elements against the float64 golden "
                f"({comparison.describe_worst()}){others}.", metrics)
            continue
        majority = _majority_digest([digests[d] for d in [device, *peers] if comparisons[d].ok])
        if majority is not None and digests[device] != majority:
            same = sum(1 for d in peers if digests[d] == majority)
            outcomes[device] = CheckOutcome(
                Status.WARN, f"{device} gives different bits from {same} other {models.get(device, 'device')}(s) "
                "for the same product, though within rounding of the float64 golden "
                f"(worst element at {comparison.worst_ratio:.0%} of the tolerance); the same chip and software "
                "should give identical bits.", metrics)
            continue
        identical = sum(1 for d in peers if digests[d] == digests[device])
        if not peers:
            compared = ""
        elif identical == len(peers):
            compared = f", and bit-identical to the {len(peers)} other device(s) of its model"
        else:
            compared = (f"; bit-identical to {identical} of the {len(peers)} other device(s) of its model, with no "
                        "majority to name an odd one")
        outcomes[device] = CheckOutcome(
            Status.PASS, f"{device}: its {AGREEMENT_SIZE}x{AGREEMENT_SIZE} float32 product agrees with the float64 "
            f"golden (worst element at {comparison.worst_ratio:.0%} of the matmul tolerance){compared}.", metrics)
    return outcomes


def _majority_digest(digests: list[str]) -> str | None:
    """The digest most devices share, when a strict majority of at least two shares it."""
    if len(digests) < 3:
        return None
    value, count = Counter(digests).most_common(1)[0]
    return value if count * 2 > len(digests) else None
