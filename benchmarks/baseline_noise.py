"""Measure how noisy performance figures are on this machine, and whether the baseline limits hold against it.

Runs the chosen performance checks `--baseline-runs` times to build a baseline, then `--healthy-runs` more healthy
runs and `--slow-runs` runs with the `slow-matmul` fault (25% slower matrix products), each judged against the
baseline exactly as `acceldoctor check --baseline` does (widened limits, a second measurement to confirm a
regression). Prints, per metric, the baseline's median and MAD, the change of every judged run, and the verdicts:

    python benchmarks/baseline_noise.py [--checks performance.gemm performance.memory_bandwidth] [--healthy-runs 6]

The target: no healthy run flagged, every slowed run flagged on a metric of performance.gemm.
"""

from __future__ import annotations

import argparse

from acceldoctor.baseline.baseline import build_baseline, judge_against_baseline
from acceldoctor.baseline.rules import load_baseline_rules
from acceldoctor.checks.registry import all_checks
from acceldoctor.devices.discovery import list_devices, resolve_devices
from acceldoctor.devices.versions import host_info
from acceldoctor.runner.pool import WorkerPool
from acceldoctor.runner.session import plan, run_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", nargs="+", default=["performance.gemm", "performance.memory_bandwidth"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--healthy-runs", type=int, default=6)
    parser.add_argument("--slow-runs", type=int, default=3)
    args = parser.parse_args()

    devices = resolve_devices(args.device, list_devices())
    planned = plan([all_checks()[c] for c in args.checks], devices)
    rules = load_baseline_rules()
    with WorkerPool() as pool:
        def run(fault=None, judge=None):
            return run_plan(planned, level="standard", host=host_info(), devices=devices, fault=fault, judge=judge,
                            pool=pool)

        baseline = build_baseline([run() for _ in range(args.baseline_runs)])

        def judge(result, device):
            return judge_against_baseline(result, device.name, baseline, rules)

        judged = {"healthy": [run(judge=judge) for _ in range(args.healthy_runs)],
                  "slow-matmul": [run(fault="slow-matmul", judge=judge) for _ in range(args.slow_runs)]}

    print(f"baseline from {args.baseline_runs} runs on {devices[0].name}; limits: fail beyond "
          f"{rules.default.fail_drop:.0%}, widened to {rules.noise_multiple:g} x 1.4826 x MAD")
    print(f"{'check metric (dtype)':52s} {'median':>10s} {'MAD':>6s}   change of each judged run (healthy | slow)")
    for entry in baseline.metrics:
        changes = {}
        for kind, reports in judged.items():
            changes[kind] = []
            for report in reports:
                for result in report.results:
                    for m in result.metrics:
                        if (result.check, m.name, m.dtype) == (entry.check, entry.metric, entry.dtype):
                            changes[kind].append((m.value - entry.median) / entry.median)
        name = f"{entry.check} {entry.metric}" + (f" ({entry.dtype})" if entry.dtype else "")
        row = " ".join(f"{c:+.0%}" for c in changes["healthy"]) + " | " + " ".join(
            f"{c:+.0%}" for c in changes["slow-matmul"])
        print(f"{name:52s} {entry.median:10.4g} {entry.mad / entry.median:6.1%}   {row}")
    for kind, reports in judged.items():
        for check in args.checks:
            results = [r for report in reports for r in report.results if r.check == check]
            statuses = " ".join(r.status.value for r in results)
            confirmed = sum("Confirmed by a second measurement" in r.message for r in results)
            dismissed = sum("counts as noise" in r.message for r in results)
            print(f"{kind:12s} {check:30s} {statuses}  ({confirmed} regressions confirmed by a second measurement, "
                  f"{dismissed} first-measurement flags dismissed as noise)")
            for r in results:
                if r.status.value != "pass":
                    print(f"    {r.status.value}: {r.message}")


if __name__ == "__main__":
    main()
