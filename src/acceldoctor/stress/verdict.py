"""Each workload's verdict on one device, judged from its interval samples (shared by `acceldoctor stress` and the
stability checks). Pure functions of the timeline."""

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


def workload_totals(samples: list[dict], prefix: str) -> dict[str, dict]:
    """Per workload whose name starts with `prefix`: iterations, wrong and NaN elements summed over the run, the
    mean rate, and the first error's time and place."""
    totals: dict[str, dict] = {}
    for sample in samples:
        for name, part in sample.get("workloads", {}).items():
            if not name.startswith(prefix):
                continue
            total = totals.setdefault(name, {"iterations": 0, "wrong_elements": 0, "nan_elements": 0, "rates": [],
                                             "unit": part.get("unit", ""), "first_error": None})
            for key in ("iterations", "wrong_elements", "nan_elements"):
                total[key] += part.get(key, 0)
            total["rates"].append(part.get("rate", 0.0))
            if (part.get("wrong_elements") or part.get("nan_elements")) and total["first_error"] is None:
                total["first_error"] = (sample["t_s"], part.get("where", ""))
    return totals


def _seconds(samples: list[dict]) -> float:
    return samples[-1]["t_s"] if samples else 0.0


def _error_metrics(totals: dict[str, dict], unit: str) -> list[Metric]:
    metrics = []
    for name, total in totals.items():
        rates = sorted(total["rates"])
        metrics += [Metric(name=f"{name}_iterations", value=total["iterations"], unit="count"),
                    Metric(name=f"{name}_wrong_elements", value=total["wrong_elements"], unit="count", threshold=0),
                    Metric(name=f"{name}_nan_elements", value=total["nan_elements"], unit="count", threshold=0)]
        if rates:
            metrics.append(Metric(name=f"{name}_rate", value=rates[len(rates) // 2], unit=total["unit"] or unit))
    return metrics


def _corruption(device: str, totals: dict[str, dict], what: str, seconds: float) -> CheckOutcome | None:
    bad = {name: t for name, t in totals.items() if t["wrong_elements"] or t["nan_elements"]}
    if not bad:
        return None
    parts = []
    for name, t in bad.items():
        when, where = t["first_error"]
        parts.append(f"{name}: {t['wrong_elements']} wrong element(s) ({t['nan_elements']} NaN) in "
                     f"{t['iterations']} {what}, first at {when:.0f} s" + (f" ({where})" if where else ""))
    return CheckOutcome(Status.FAIL, f"{device} computed wrong results in {seconds:.0f} s: " + "; ".join(parts), [])


def judge_gemm(device: str, samples: list[dict], drift_limit: float, drift_fail: float = 0.25) -> CheckOutcome:
    """`fail` on any wrong or NaN element of any GEMM, or float32 throughput more than `drift_fail` below the
    start; `warn` beyond `drift_limit`."""
    totals = workload_totals(samples, "gemm_")
    seconds = _seconds(samples)
    metrics = [*_error_metrics(totals, "TFLOP/s"), Metric(name="seconds", value=seconds, unit="s")]
    drift = throughput_drift([(x["t_s"], x["tflops"]) for x in samples])
    if drift is not None:
        metrics += [Metric(name="tflops_start", value=drift.start_tflops, unit="TFLOP/s"),
                    Metric(name="tflops_end", value=drift.end_tflops, unit="TFLOP/s"),
                    Metric(name="throughput_change", value=drift.change, unit="ratio", threshold=-drift_limit)]
    products = ", ".join(f"{t['iterations']} {name.removeprefix('gemm_')}" for name, t in totals.items())
    done = f"{products} products in {seconds:.0f} s"
    if (bad := _corruption(device, totals, "products", seconds)) is not None:
        return CheckOutcome(Status.FAIL, f"{bad.message}; a deterministic product must repeat bit for bit, so this "
                            "is silent data corruption.", metrics)
    if drift is not None and drift.change < -drift_limit:
        status = Status.FAIL if drift.change < -drift_fail else Status.WARN
        return CheckOutcome(status, f"{device} slowed down during the run: {drift.end_tflops:.3g} TFLOP/s at "
                            f"the end against {drift.start_tflops:.3g} at the start ({drift.change:+.0%}); {done}, "
                            "every result exact.", metrics)
    rate = f", float32 {drift.end_tflops:.3g} TFLOP/s steady" if drift is not None else ""
    return CheckOutcome(Status.PASS, f"{device}: {done}, every result bit-identical to the first{rate}.", metrics)


def judge_memory(device: str, samples: list[dict]) -> CheckOutcome:
    """`fail` on any word that read back differently from what was written."""
    totals = workload_totals(samples, "memory_soak")
    soak_bytes = next((s["workloads"]["memory_soak"].get("bytes") for s in samples
                       if "memory_soak" in s.get("workloads", {})), None)
    seconds = _seconds(samples)
    metrics = _error_metrics(totals, "GB/s")
    if soak_bytes:
        metrics.append(Metric(name="soak_bytes", value=soak_bytes, unit="bytes"))
    if (bad := _corruption(device, totals, "passes", seconds)) is not None:
        return CheckOutcome(Status.FAIL, f"{bad.message}; device memory returned words other than those written "
                            "to it.", metrics)
    total = totals.get("memory_soak", {"iterations": 0, "rates": []})
    if not total["iterations"]:
        return CheckOutcome(Status.SKIP, f"{device}: no write-and-verify pass finished.", metrics)
    size = f" over {soak_bytes / (1 << 20):.0f} MiB" if soak_bytes else ""
    rates = sorted(total["rates"])
    rate = f", {rates[len(rates) // 2]:.3g} GB/s" if rates else ""
    return CheckOutcome(Status.PASS, f"{device}: {total['iterations']} write-and-verify passes{size} in "
                        f"{seconds:.0f} s with six patterns, every word read back as written{rate}.", metrics)


def judge_train(device: str, samples: list[dict], tolerance: float = 0.0) -> CheckOutcome:
    """`fail` on any loss off the recorded trajectory (beyond `tolerance`, relative) or not finite."""
    totals = workload_totals(samples, "train_loop")
    seconds = _seconds(samples)
    metrics = _error_metrics(totals, "steps/s")
    if (bad := _corruption(device, totals, "passes", seconds)) is not None:
        return CheckOutcome(Status.FAIL, f"{bad.message}; from the same weights and data the losses must retrace "
                            "the recorded trajectory.", metrics)
    total = totals.get("train_loop", {"iterations": 0})
    if not total["iterations"]:
        return CheckOutcome(Status.SKIP, f"{device}: no training pass finished.", metrics)
    bound = "bit for bit" if tolerance == 0 else f"within a relative {tolerance:g}"
    steps = next((s["workloads"]["train_loop"].get("steps_per_pass") for s in samples
                  if "train_loop" in s.get("workloads", {})), None) or "several"
    return CheckOutcome(Status.PASS, f"{device}: {total['iterations']} passes of {steps} training steps in "
                        f"{seconds:.0f} s, "
                        f"every loss on the recorded trajectory ({bound}).", metrics)
