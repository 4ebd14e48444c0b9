"""Wall time of `acceldoctor check` per level, interpreter start included, against the issue's targets.

    python benchmarks/check_wall_time.py [--levels quick standard] [--repeat 3] [--device cpu]

The peer measured side by side is a bare `python -c "import torch"`: the unavoidable floor of any
torch-based tool on this machine. Prints median and spread per level, and the ratio to the target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = {"quick": 30.0, "standard": 180.0}


def time_command(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", nargs="+", default=["quick", "standard"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    floor = [time_command([sys.executable, "-c", "import torch"])[0] for _ in range(args.repeat)]
    print(f"peer: python -c 'import torch'  median {statistics.median(floor):.2f} s "
          f"(min {min(floor):.2f}, max {max(floor):.2f})")
    worst_ratio = 0.0
    for level in args.levels:
        times, statuses = [], None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                report_path = Path(tmp) / "r.json"
                elapsed, proc = time_command([sys.executable, "-m", "acceldoctor", "check", "--level", level,
                                              "--device", args.device, "--json", str(report_path)])
                if proc.returncode not in (0, 1) or not report_path.exists():
                    print(f"{level}: acceldoctor exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
                    return 2
                times.append(elapsed)
                report = json.loads(report_path.read_text())
                statuses = {k: v for k, v in report["summary"].items() if v}
                slowest = sorted(report["results"], key=lambda r: -r["duration_s"])[:3]
        median = statistics.median(times)
        target = TARGET_S.get(level)
        ratio = median / target if target else float("nan")
        worst_ratio = max(worst_ratio, ratio if target else 0)
        print(f"{level:>8}: median {median:6.2f} s (min {min(times):.2f}, max {max(times):.2f}, n={len(times)}) "
              f"exit {proc.returncode} {statuses}; target {target} s, ratio {ratio:.2f}; "
              f"{median / statistics.median(floor):.1f}x the torch import floor")
        print("          slowest checks: " + ", ".join(f"{r['check']} {r['duration_s']:.1f}s" for r in slowest))
    return 0 if worst_ratio <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
