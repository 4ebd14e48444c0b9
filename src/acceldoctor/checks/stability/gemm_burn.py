"""stability.gemm_burn: a short burn of the device (the whole burn-in is `acceldoctor stress`)."""

from __future__ import annotations

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.checks.stability._burn import burn_for_check
from acceldoctor.stress.verdict import drift_limits, judge_gemm
from acceldoctor.stress.workloads import build_workloads


@register_check(
    id="stability.gemm_burn",
    title="GEMM burn: the same product, recomputed for a while, must repeat bit for bit and keep its speed",
    levels=("full",),
    timeout_s=180.0,
    doc=CheckDoc(
        verifies=("A seeded matrix product is computed once as the golden and then recomputed for the whole "
                  "duration, in float32 and, on accelerators, in the device's fast dtype (bfloat16 or float16); "
                  "every element of every result must equal the golden bit for bit (NaN counted apart), and float32 "
                  "throughput at the end must stay within `drift_limit` of the start."),
        why=("Fleet studies find silent data corruption in about one device in a thousand, and NaN checks alone "
             "miss most of it; devices that throttle as they heat lose throughput only after minutes. "
             "`acceldoctor stress` runs this burn on every device at once for as long as asked."),
        failure_means=("`fail`: the device returned a different result for the same product (silent data "
                       "corruption), or it ended over 25% slower than it began (50% on the CPU); `warn`: over 10% "
                       "slower (30% on the CPU): throttling."),
        remedy=("For corruption: take the device out of service and hand the report to the vendor; re-run "
                "`acceldoctor stress --duration 30m -d DEVICE` to see how often it happens. For drift: look at "
                "temperature, power limit and clocks (`nvidia-smi -q -d PERFORMANCE`, `rocm-smi`, `npu-smi info`) "
                "and the cooling."),
    ),
    params=(
        Param("duration_s", 20.0, "Seconds of burn.", minimum=2),
        Param("interval_s", 1.0, "Seconds per throughput sample.", minimum=0.2),
        Param("drift_limit", "auto", "Warn when the end is this much slower than the start (auto: 0.10 on "
              "accelerators, 0.30 on the CPU, whose throughput moves with the OS's use of its cores).",
              choices=("auto",), minimum=0, maximum=1),
        Param("drift_fail", "auto", "Fail when the end is this much slower than the start (auto: 0.25 on "
              "accelerators, 0.50 on the CPU).", choices=("auto",), minimum=0, maximum=1),
    ),
)
def check_gemm_burn(ctx: CheckContext) -> CheckOutcome:
    samples = burn_for_check(ctx, build_workloads(ctx.device, ("gemm",), seed=ctx.seed),
                             interval_s=float(ctx.params["interval_s"]))
    warn, fail = drift_limits(ctx.device.type, ctx.params["drift_limit"], ctx.params["drift_fail"])
    return judge_gemm(str(ctx.device), samples, warn, fail)
