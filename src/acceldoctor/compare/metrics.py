"""How far apart two recordings of one tensor are: from their statistics alone (a lower bound that never exceeds the
true error), or from the tensors themselves. Pure functions."""

from __future__ import annotations

import math

import torch

# Machine epsilon per dtype name as the dumps write it ("tf32": float32 with TF32 matmuls, a 10-bit mantissa);
# anything unknown is judged as float32.
EPS = {"float64": 2.0**-52, "float32": 2.0**-23, "tf32": 2.0**-10, "bfloat16": 2.0**-7, "float16": 2.0**-10,
       "float8_e4m3fn": 2.0**-3, "float8_e5m2": 2.0**-2}


def eps_of(dtype: str) -> float:
    return EPS.get(dtype.removeprefix("torch."), EPS["float32"])


def number(value) -> float:
    """A statistic as the dump wrote it (JSON has no NaN: strings stand in) as a float."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        return float(value)  # "nan", "inf", "-inf"
    return float(value)


def nonfinite(stats: dict) -> int:
    return int(stats.get("nan", 0) or 0) + int(stats.get("inf", 0) or 0)


def error_from_stats(a: dict, b: dict, numel: int) -> float:
    """||a - b|| / max(||a||, ||b||) from the two tensors' statistics: the largest of lower bounds (less the
    recorder's own float32 rounding) and, where the dump has them, a random-projection estimate (pairwise float32 sums).

    Each term bounds the 2-norm of the difference from below: |‖a‖-‖b‖| (triangle inequality),
    sqrt(n)·|mean a - mean b| (Cauchy-Schwarz on the sum of the difference), and |max a - max b|, |min a - min b|
    (each is at most the largest elementwise difference). The projections are an estimate, not a bound: two random
    ±1 projections of the difference have expected square ‖a - b‖².
    """
    if a.get("checksum") is not None and a.get("checksum") == b.get("checksum"):
        return 0.0
    norm_a, norm_b = number(a.get("l2")), number(b.get("l2"))
    scale = max(norm_a, norm_b)
    if not (math.isfinite(norm_a) and math.isfinite(norm_b)):
        return math.inf if nonfinite(a) != nonfinite(b) or math.isfinite(norm_a) != math.isfinite(norm_b) else 0.0
    if scale == 0:
        return 0.0
    # The recorder sums in float32: the norm with a BLAS dot (rounding up to about eps·sqrt(n) of it), the mean
    # pairwise (about eps·log2(n)). That much is taken off before they count.
    eps32 = 2.0**-23
    terms = [abs(norm_a - norm_b) - eps32 * math.sqrt(max(numel, 1)) * scale,
             math.sqrt(max(numel, 1)) * abs(number(a.get("mean")) - number(b.get("mean")))
             - 2 * eps32 * math.log2(max(numel, 2)) * scale,
             abs(number(a.get("max")) - number(b.get("max"))), abs(number(a.get("min")) - number(b.get("min")))]
    projections_a, projections_b = a.get("proj") or [], b.get("proj") or []
    if projections_a and len(projections_a) == len(projections_b):
        # Not a bound but an estimate of ‖a - b‖: random-sign projections of the difference (compare/stats.py).
        squares = [(number(x) - number(y)) ** 2 for x, y in zip(projections_a, projections_b, strict=True)]
        terms.append(math.sqrt(sum(squares) / len(squares)))
    return max((t for t in terms if math.isfinite(t)), default=0.0) / scale


def tensor_metrics(a: torch.Tensor, b: torch.Tensor, tolerance: float) -> dict[str, float]:
    """Cosine similarity, max absolute and relative error, RMSE, relative L2 error and the share of elements
    beyond `tolerance` (relative to the larger of the element and the tensor's RMS), in float64 on the CPU."""
    x, y = a.detach().to("cpu", torch.float64).reshape(-1), b.detach().to("cpu", torch.float64).reshape(-1)
    finite = torch.isfinite(x) & torch.isfinite(y)
    both_nan = torch.isnan(x) & torch.isnan(y)
    same_inf = torch.isinf(x) & (x == y)
    mismatched_special = int((~finite & ~both_nan & ~same_inf).sum())
    x, y = x[finite], y[finite]
    diff = (x - y).abs()
    norm = max(float(x.norm()), float(y.norm()))
    rms = norm / math.sqrt(max(x.numel(), 1))
    denominator = torch.maximum(x.abs(), y.abs()).clamp_min(rms * 1e-3 if rms > 0 else 1e-300)
    cosine = float(torch.dot(x, y) / (x.norm() * y.norm())) if x.norm() > 0 and y.norm() > 0 else \
        (1.0 if x.norm() == y.norm() else 0.0)
    beyond = diff > tolerance * torch.maximum(x.abs().maximum(y.abs()), torch.tensor(rms, dtype=torch.float64))
    return {
        "rel_l2_error": float(diff.norm()) / norm if norm > 0 else 0.0,
        "cosine": cosine,
        "max_abs_error": float(diff.max()) if diff.numel() else 0.0,
        "max_rel_error": float((diff / denominator).max()) if diff.numel() else 0.0,
        "rmse": float(diff.pow(2).mean().sqrt()) if diff.numel() else 0.0,
        "share_beyond_tolerance": (int(beyond.sum()) + mismatched_special) / max(a.numel(), 1),
        "mismatched_nonfinite": float(mismatched_special),
    }
