"""performance.memory_bandwidth: STREAM copy, scale, add and triad on device memory, judged against the spec sheet."""

from __future__ import annotations

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.performance._spec import judge_efficiency, spec_for
from acceldoctor.checks.performance._timing import measure
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.report.model import Metric, Status

MI = 2**20
# Elements per float32 array when `elements_mi` is 0, by device kind and level: far beyond any cache.
CPU_ELEMENTS_MI = {"standard": 32, "full": 64}  # 128 / 256 MiB per array
ACCELERATOR_ELEMENTS_MI = {"standard": 256, "full": 512}  # 1 / 2 GiB per array
SCALAR = 3.0
# STREAM's byte counts: arrays read plus arrays written per element.
KERNELS = (("copy", 2), ("scale", 2), ("add", 3), ("triad", 3))


def _elements(ctx: CheckContext) -> int:
    chosen = int(ctx.params.get("elements_mi") or 0)
    if not chosen:
        table = CPU_ELEMENTS_MI if ctx.device.type == "cpu" else ACCELERATOR_ELEMENTS_MI
        chosen = table.get(ctx.level, table["standard"])
    return chosen * MI


@register_check(
    id="performance.memory_bandwidth",
    title="Device memory bandwidth (STREAM copy, scale, add, triad) reaches the device's spec sheet",
    levels=("standard", "full"),
    timeout_s=300.0,
    params=(
        Param("elements_mi", 0, "float32 elements per array, in Mi (2^20); three arrays are allocated. 0 = chosen by "
              "device kind: 32 Mi (128 MiB) on the CPU, 256 Mi (1 GiB) on accelerators, twice that at full level.",
              minimum=0),
        Param("warmup", 2, "Untimed runs of each kernel before it is measured.", minimum=0),
        Param("repeats", 10, "Timed repeats per kernel; the median is reported, the interquartile range as spread.",
              {"full": 20}, minimum=5),
        Param("warn_efficiency", 0.5, "Warn when the best kernel's bandwidth is below this share of the spec "
              "sheet's memory bandwidth.", minimum=0, maximum=1),
        Param("fail_efficiency", 0.25, "Fail when the best kernel's bandwidth is below this share of the spec "
              "sheet's memory bandwidth.", minimum=0, maximum=1),
    ),
    doc=CheckDoc(
        verifies="Runs the four STREAM kernels on three float32 arrays in device memory, each far larger than any "
                 "cache (128 MiB per array on the CPU, 1 GiB on accelerators): copy `c = a`, scale `b = s·c`, "
                 "add `c = a + b` and triad `a = b + s·c`, written into the existing arrays (`out=`) so that no "
                 "allocation is timed. Each kernel is warmed up, then timed in repeats (device events on "
                 "accelerators). Bandwidth counts STREAM's bytes — two arrays per element for copy and scale, "
                 "three for add and triad — over the median time, in GB/s (10^9 bytes). Reports each kernel's "
                 "bandwidth and relative interquartile range and, when the device's spec sheet is known, the best "
                 "kernel's share of the advertised memory bandwidth (`efficiency`).",
        why="Most of a model's operations other than matrix products (normalization, activations, optimizer "
            "steps, attention at long sequence lengths, decoding) are limited by memory bandwidth, not compute. "
            "A memory subsystem running slow — memory clocks held low, a thermally throttled HBM stack, a "
            "disabled channel, ECC page retirement gone wrong, or on the CPU one NUMA node serving all threads — "
            "slows every job without any error.",
        failure_means="`warn`: the best STREAM kernel reaches less than `warn_efficiency` (50%) of the spec "
                      "sheet's memory bandwidth; `fail`: less than `fail_efficiency` (25%). The message names "
                      "the kernel, the measured and the advertised figure. A healthy accelerator sustains "
                      "roughly 70-90% of its advertised bandwidth in STREAM. On the CPU (and devices without a "
                      "spec sheet entry) bandwidth is reported without a verdict.",
        remedy="Re-run with the device otherwise idle. Check memory clocks, temperature, power limit and "
               "retired pages or row remapping in the vendor tool (nvidia-smi -q -d CLOCK,TEMPERATURE,"
               "ROW_REMAPPER; rocm-smi; npu-smi info). On a CPU, pin the process to one NUMA node and check the "
               "DIMM population. If the device stays slow, compare with another of the same model "
               "(`acceldoctor check --baseline`) and ask the vendor for a memory diagnostic.",
    ),
)
def check_memory_bandwidth(ctx: CheckContext) -> CheckOutcome:
    n = _elements(ctx)
    warmup, repeats = int(ctx.params["warmup"]), int(ctx.params["repeats"])
    a = torch.full((n,), 1.0, dtype=torch.float32, device=ctx.device)
    b = torch.full((n,), 2.0, dtype=torch.float32, device=ctx.device)
    c = torch.zeros(n, dtype=torch.float32, device=ctx.device)
    calls = {
        "copy": lambda: c.copy_(a),
        "scale": lambda: torch.mul(c, SCALAR, out=b),
        "add": lambda: torch.add(a, b, out=c),
        "triad": lambda: torch.add(b, c, alpha=SCALAR, out=a),
    }
    bytes_per_array = n * a.element_size()
    metrics: list[Metric] = []
    rates: dict[str, float] = {}
    for i, (kernel, arrays) in enumerate(KERNELS):
        ctx.progress(i, len(KERNELS), kernel)
        m = measure(calls[kernel], ctx.device, warmup=warmup, repeats=repeats)
        rates[kernel] = m.rate(arrays * bytes_per_array) / 1e9
        metrics += [Metric(name=f"{kernel}_bandwidth", value=rates[kernel], unit="GB/s"),
                    Metric(name=f"{kernel}_spread", value=m.relative_spread, unit="ratio")]
    ctx.progress(len(KERNELS), len(KERNELS), "done")
    best = max(rates, key=rates.__getitem__)
    summary = ", ".join(f"{k} {v:.1f}" for k, v in rates.items())
    size = f"{bytes_per_array / MI:g} MiB arrays"
    spec = spec_for(ctx.device)
    peak = spec.peak("memory_bandwidth") if spec is not None else None
    if not peak:
        return CheckOutcome(Status.PASS, f"STREAM memory bandwidth over {size}: {summary} GB/s (no spec sheet to "
                                         f"compare with).", metrics)
    warn_at, fail_at = float(ctx.params["warn_efficiency"]), float(ctx.params["fail_efficiency"])
    efficiency = spec.efficiency("memory_bandwidth", None, rates[best])
    metrics.append(Metric(name="efficiency", value=efficiency, unit="ratio", threshold=warn_at))
    status = judge_efficiency(efficiency, warn_at, fail_at)
    if status is Status.PASS:
        return CheckOutcome(Status.PASS, f"STREAM memory bandwidth over {size}: {summary} GB/s, {efficiency:.0%} "
                                         f"efficiency against the spec sheet's {peak:g} GB/s.", metrics)
    limit = fail_at if status is Status.FAIL else warn_at
    return CheckOutcome(status, f"Memory bandwidth is low: the best STREAM kernel ({best}) reaches {rates[best]:.1f} "
                                f"GB/s, only {efficiency:.1%} efficiency against the spec sheet's {peak:g} GB/s "
                                f"(below {limit:.0%}).", metrics)
