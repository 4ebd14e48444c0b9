"""One device's burn, judged from its interval samples: corruption first, then drift (shared by `acceldoctor
stress` and the `stability.gemm_burn` check)."""

from __future__ import annotations

from acceldoctor.checks.context import CheckOutcome
from acceldoctor.report.model import Metric, Status
from acceldoctor.stress.drift import throughput_drift

# (warn, fail) drops of throughput from the start of a burn to its end. A shared CPU's throughput moves by 20% or
# more over seconds as the OS and neighbours take cores (a 12 s healthy burn on the 2-core development VM ended
# 10-20% below its start); an accelerator holds its clocks unless it throttles.
DRIFT_LIMITS = {"cpu": (0.30, 0.50)}
DEFAULT_DRIFT_LIMITS = (0.10, 0.25)


def drift_limits(device_type: str, warn: float | str = "auto", fail: float | str = "auto") -> tuple[float, float]:
    default = DRIFT_LIMITS.get(device_type, DEFAULT_DRIFT_LIMITS)
    return (default[0] if warn == "auto" else float(warn), default[1] if fail == "auto" else float(fail))


def judge_burn(device: str, samples: list[dict], drift_limit: float, drift_fail: float = 0.25) -> CheckOutcome:
    """`fail` on any wrong or NaN element, or throughput more than `drift_fail` below the start; `warn` beyond
    `drift_limit`."""
    iterations = sum(x["iterations"] for x in samples)
    wrong = sum(x["wrong_elements"] for x in samples)
    nan = sum(x["nan_elements"] for x in samples)
    seconds = samples[-1]["t_s"] if samples else 0.0
    drift = throughput_drift([(x["t_s"], x["tflops"]) for x in samples])
    metrics = [Metric(name="iterations", value=iterations, unit="count"),
               Metric(name="wrong_elements", value=wrong, unit="count", threshold=0),
               Metric(name="nan_elements", value=nan, unit="count", threshold=0),
               Metric(name="seconds", value=seconds, unit="s")]
    if drift is not None:
        metrics += [Metric(name="tflops_start", value=drift.start_tflops, unit="TFLOP/s"),
                    Metric(name="tflops_end", value=drift.end_tflops, unit="TFLOP/s"),
                    Metric(name="throughput_change", value=drift.change, unit="ratio", threshold=-drift_limit)]
    done = f"{iterations} products in {seconds:.0f} s"
    if wrong or nan:
        first = next(x for x in samples if x["wrong_elements"] or x["nan_elements"])
        return CheckOutcome(Status.FAIL, f"{device} computed wrong results: {wrong} wrong element(s) ({nan} NaN) in "
                            f"{done}, first at {first['t_s']:.0f} s; a deterministic product must repeat bit for "
                            "bit, so this is silent data corruption.", metrics)
    if drift is not None and drift.change < -drift_limit:
        status = Status.FAIL if drift.change < -drift_fail else Status.WARN
        return CheckOutcome(status, f"{device} slowed down during the run: {drift.end_tflops:.3g} TFLOP/s at "
                            f"the end against {drift.start_tflops:.3g} at the start ({drift.change:+.0%}); {done}, "
                            "every result exact.", metrics)
    rate = f", {drift.end_tflops:.3g} TFLOP/s steady" if drift is not None else ""
    return CheckOutcome(Status.PASS, f"{device}: {done}, every result bit-identical to the first{rate}.", metrics)
