"""performance.gemm: square matrix-product throughput per dtype over a size sweep, judged against the spec sheet."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.performance._spec import device_name, judge_throughput, spec_for
from acceldoctor.checks.performance._timing import Measurement, measure
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.report.model import Metric, Status

# Square sizes swept when `sizes` is left empty, by device kind and level.
CPU_SIZES = {"standard": [256, 512, 1024], "full": [256, 512, 1024, 2048]}
ACCELERATOR_SIZES = {"standard": [1024, 2048, 4096, 8192], "full": [1024, 2048, 4096, 8192, 16384]}
INT8 = "int8"


@dataclass
class _Best:
    dtype: str
    size: int
    tflops: float
    spread: float
    unit: str
    skipped: list[int]


def _sizes(ctx: CheckContext) -> list[int]:
    sizes = ctx.params.get("sizes") or []
    if sizes:
        return sorted(int(s) for s in sizes)
    table = CPU_SIZES if ctx.device.type == "cpu" else ACCELERATOR_SIZES
    return list(table.get(ctx.level, table["standard"]))


def _operands(variant_dtype: torch.dtype, n: int, device: torch.device, gen: torch.Generator):
    if variant_dtype == torch.int8:
        a = torch.randint(-8, 8, (n, n), generator=gen, dtype=torch.int8).to(device)
        b = torch.randint(-8, 8, (n, n), generator=gen, dtype=torch.int8).to(device)
        return a, b, torch.empty(n, n, dtype=torch.int32, device=device)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=variant_dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=variant_dtype)
    return a, b, torch.empty(n, n, dtype=variant_dtype, device=device)


def _has_int_mm(device: torch.device) -> bool:
    if device.type != "cuda" or not hasattr(torch, "_int_mm"):
        return False
    try:
        a = torch.ones(32, 32, dtype=torch.int8, device=device)
        torch._int_mm(a, a)
        return True
    except (RuntimeError, NotImplementedError):
        return False


def _sweep(ctx: CheckContext, name: str, dtype: torch.dtype, math_mode, sizes: list[int], done: int,
           total: int) -> tuple[_Best | None, int]:
    warmup, repeats = int(ctx.params["warmup"]), int(ctx.params["repeats"])
    min_repeat_s, budget_s = float(ctx.params["min_repeat_s"]), float(ctx.params["max_size_s"])
    gen = ctx.generator(salt=len(name))
    best: _Best | None = None
    skipped: list[int] = []
    last: tuple[int, Measurement] | None = None
    for n in sizes:
        done += 1
        if last is not None:  # predict this size's time from the last one (n^3 work) and skip what is too slow
            prev_n, prev = last
            predicted = prev.median * (n / prev_n) ** 3 * (warmup + repeats)
            if predicted > budget_s:
                skipped.append(n)
                continue
        ctx.progress(done, total, f"{name} n={n}")
        a, b, out = _operands(dtype, n, ctx.device, gen)
        if dtype == torch.int8:
            def call(a=a, b=b):
                return torch._int_mm(a, b)
        else:
            def call(a=a, b=b, out=out):
                return torch.mm(a, b, out=out)
        if last is None:  # the first size: one probe call (it also warms up) predicts the measuring time
            with math_mode():
                begin = time.perf_counter()
                call()
                ctx.synchronize()
                probe_s = time.perf_counter() - begin
            if probe_s * (warmup + repeats) > budget_s:
                skipped.append(n)
                break  # larger sizes would be slower still
        with math_mode():
            m = measure(call, ctx.device, warmup=warmup, repeats=repeats, min_repeat_s=min_repeat_s)
        last = (n, m)
        rate = m.rate(2.0 * n**3) / 1e12
        if best is None or rate > best.tflops:
            best = _Best(name, n, rate, m.relative_spread, "TOP/s" if dtype == torch.int8 else "TFLOP/s", skipped)
        del a, b, out
    if best is not None:
        best.skipped = skipped
    return best, done


def _no_math_mode():
    from contextlib import nullcontext
    return nullcontext()


@register_check(
    id="performance.gemm",
    title="Matrix-multiply throughput per dtype reaches the device's spec sheet",
    levels=("standard", "full"),
    timeout_s=300.0,
    params=(
        Param("sizes", [], "Square matrix sizes n to sweep (n x n @ n x n), e.g. [1024, 4096]; empty = chosen by "
              "device kind: 256, 512, 1024 on the CPU (2048 added at full), 1024 to 8192 on accelerators (16384 "
              "added at full)."),
        Param("warmup", 3, "Untimed calls before each size is measured.", minimum=0),
        Param("repeats", 7, "Timed repeats per size; the median is reported, the interquartile range as spread.",
              {"full": 15}, minimum=5),
        Param("min_repeat_s", 0.05, "Each timed repeat batches calls until it lasts at least this many seconds, so "
              "that short products are not lost in timer resolution.", minimum=0),
        Param("max_size_s", 2.0, "A size whose predicted measuring time (from the previous size, n^3 scaling) "
              "exceeds this many seconds is skipped for that dtype: slow dtypes (bf16/fp16 on most CPUs) stop "
              "early instead of running for minutes.", {"full": 8.0}, minimum=0),
        Param("warn_efficiency", 0.5, "Warn when the best throughput of a dtype is below this share of the spec "
              "sheet's peak for it.", minimum=0, maximum=1),
        Param("fail_efficiency", 0.25, "Fail when the best throughput of a dtype is below this share of the spec "
              "sheet's peak for it.", minimum=0, maximum=1),
    ),
    doc=CheckDoc(
        verifies="Times the square matrix product `C = A @ B` (written into a preallocated output) in every dtype "
                 "the device computes in — float32, TF32 where the hardware has it, bfloat16, float16, and int8 "
                 "through `torch._int_mm` on CUDA devices that support it — over a sweep of sizes (256 to 1024 "
                 "on the CPU, 1024 to 8192 on accelerators; larger at full level). Each size is warmed up, then "
                 "timed in repeats of batched calls (device events on accelerators); throughput is 2·n³ over the "
                 "median time. Reports per dtype the best throughput (`tflops`, TFLOP/s or TOP/s for int8), the "
                 "size it was reached at (`peak_size`), its relative interquartile range (`tflops_spread`) and, "
                 "when the device's spec sheet is known, the share of the advertised peak (`efficiency`).",
        why="Matrix products are most of the work in training and inference, so GEMM throughput is the first "
            "number that tells whether a chip runs as fast as it should. Vendors' GEMM libraries regress "
            "between releases, fall back to slow kernels for a dtype they do not tune, or are held back by a "
            "power cap, thermal throttling, a wrong clock setting or a chip running in a degraded mode; none of "
            "these produces an error, only a slower job.",
        failure_means="`warn`: the best throughput of a dtype is below `warn_efficiency` (50%) of the spec "
                      "sheet's peak; `fail`: below `fail_efficiency` (25%). The message names the dtype, the "
                      "measured and the advertised figure. Well-tuned GEMMs on a large square product reach "
                      "60-90% of the peak, so a figure far below means a slow kernel, a throttled or "
                      "power-capped chip, or a spec sheet entry for a different variant of the chip. On the "
                      "CPU (and devices without a spec sheet entry) throughput is reported without a verdict.",
        remedy="Re-run with the device otherwise idle. Check clocks, power limit and temperature in the vendor "
               "tool (nvidia-smi -q -d CLOCK,POWER,PERFORMANCE; rocm-smi; npu-smi info), and the throttle "
               "reasons. If only one dtype is slow, the vendor library lacks a tuned kernel for it: update the "
               "driver and GEMM library (cuBLAS, hipBLASLt, CANN) or report the dtype and size to the vendor. "
               "Compare with another device of the same model using `acceldoctor check --baseline`.",
    ),
)
def check_gemm(ctx: CheckContext) -> CheckOutcome:
    sizes = _sizes(ctx)
    variants: list[tuple[str, torch.dtype, Any]] = [
        (v.name, v.dtype, v.math_mode) for v in ctx.variants(include_tf32=True)]
    if _has_int_mm(ctx.device):
        variants.append((INT8, torch.int8, _no_math_mode))
    total = len(sizes) * len(variants)
    done = 0
    results: list[_Best] = []
    too_slow: list[str] = []  # dtypes whose smallest size was already too slow to measure
    for name, dtype, math_mode in variants:
        best, done = _sweep(ctx, name, dtype, math_mode, sizes, done, total)
        if best is not None:
            results.append(best)
        else:
            too_slow.append(name)
    warn_at, fail_at = float(ctx.params["warn_efficiency"]), float(ctx.params["fail_efficiency"])
    spec = spec_for(ctx.device)
    metrics: list[Metric] = []
    for r in results:
        metrics += [
            Metric(name="tflops", value=r.tflops, unit=r.unit, dtype=r.dtype),
            Metric(name="tflops_spread", value=r.spread, unit="ratio", dtype=r.dtype),
            Metric(name="peak_size", value=r.size, unit="n", dtype=r.dtype),
        ]
    verdict = judge_throughput(spec, [(r.dtype, r.tflops, r.unit) for r in results], warn_at, fail_at, metrics)
    status, problems = verdict.status, verdict.problems
    budget = float(ctx.params["max_size_s"])
    if not results:
        return CheckOutcome(Status.SKIP, f"every matrix size would take longer than max_size_s={budget:g} s to measure "
                                         "in every dtype on this device.", metrics)
    if problems:
        more = f" ({len(problems) - 1} more dtype(s) below par)" if len(problems) > 1 else ""
        return CheckOutcome(status, f"GEMM throughput is low: {problems[0]}{more}.", metrics)
    summary = ", ".join(f"{r.tflops:.3g} {r.unit} in {r.dtype} (n={r.size})" for r in results)
    name = device_name(ctx.device)
    against = " (no spec sheet to compare with)" if spec is None else " (within the spec sheet's expectations)"
    subject = f"{name}" if name else "the device"
    slow = [f"n>={r.skipped[0]} in {r.dtype}" for r in results if r.skipped] + [f"every size in {d}" for d in too_slow]
    skipped = f"; skipped as too slow to measure: {', '.join(slow)}" if slow else ""
    return CheckOutcome(Status.PASS, f"Best GEMM throughput on {subject}: {summary}{against}{skipped}.", metrics)
