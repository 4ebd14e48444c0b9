"""Compare acceldoctor's CPU performance figures with independent NumPy measurements on this machine.

GEMM: performance.gemm's float32 TFLOP/s at n=1024 vs NumPy's BLAS `a @ b` of the same size and dtype.
Memory: performance.memory_bandwidth's triad GB/s vs a NumPy STREAM-style triad (`a[:] = b + s*c` with out=
arrays of the same size). Each independent figure is the median of timed repeats after warm-up. Also reports
each check's duration at its standard-level defaults. Prints figures and ratios (acceldoctor / independent).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from acceldoctor.runner.worker import Task, run_task

N = 1024
ELEMENTS_MI = 32
SCALAR = 3.0


def median_time(fn, warmup: int = 3, repeats: int = 10) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def metric(result: dict, name: str, dtype: str | None = None) -> float:
    return next(m["value"] for m in result["metrics"] if m["name"] == name and m["dtype"] == dtype)


def numpy_gemm_tflops(n: int) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    return 2 * n**3 / median_time(lambda: np.matmul(a, b, out=out)) / 1e12


def numpy_triad_gbs(elements: int) -> float:
    a = np.ones(elements, dtype=np.float32)
    b = np.full(elements, 2.0, dtype=np.float32)
    c = np.zeros(elements, dtype=np.float32)

    def triad():  # a[:] = b + s*c without temporaries
        np.multiply(c, SCALAR, out=a)
        np.add(a, b, out=a)

    return 3 * elements * 4 / median_time(triad) / 1e9


def main() -> int:
    gemm = run_task(Task("performance.gemm", "cpu", "standard", params={"sizes": [N]}))
    tflops = metric(gemm, "tflops", "float32")
    independent_tflops = numpy_gemm_tflops(N)
    bandwidth = run_task(Task("performance.memory_bandwidth", "cpu", "standard",
                              params={"elements_mi": ELEMENTS_MI}))
    triad = metric(bandwidth, "triad_bandwidth")
    independent_triad = numpy_triad_gbs(ELEMENTS_MI * 2**20)
    print(f"GEMM float32 n={N}: acceldoctor {tflops:.4f} TFLOP/s, NumPy BLAS {independent_tflops:.4f} TFLOP/s, "
          f"ratio {tflops / independent_tflops:.2f}")
    print(f"STREAM triad {ELEMENTS_MI} Mi float32: acceldoctor {triad:.2f} GB/s, NumPy {independent_triad:.2f} GB/s, "
          f"ratio {triad / independent_triad:.2f}")
    print(f"  note: NumPy cannot fuse the triad: it runs two single-threaded passes moving 5 arrays, not STREAM's 3 "
          f"(actual traffic {independent_triad * 5 / 3:.2f} GB/s), so a ratio above 1 is expected")
    for check in ("performance.gemm", "performance.memory_bandwidth"):
        result = run_task(Task(check, "cpu", "standard"))
        print(f"{check} at standard level on cpu: {result['status']} in {result['duration_s']:.2f} s — "
              f"{result['message']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
