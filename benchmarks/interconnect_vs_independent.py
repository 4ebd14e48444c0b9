"""Compare acceldoctor's all_reduce bus bandwidth with an independent timing loop over torch.distributed.

Spawns `--nproc` ranks in one process group (gloo on CPU by default; nccl puts rank r on cuda:r) and, for each
size, measures all_reduce of the same float32 buffer (size // 4 elements, summed in place) two ways:

- acceldoctor: interconnect.collectives.measure_collective("all_reduce", size), its busbw_gbps as reported.
- independent: a loop written directly with torch.distributed: warm-up, then per iteration
  `barrier; t0 = perf_counter(); all_reduce(x); t = perf_counter() - t0`; per iteration the slowest rank's time
  (an all_reduce MAX of the times), the median over iterations, busbw = size / median x 2(n-1)/n (nccl-tests).

Both follow the same synchronization semantics. measure_collective aligns the ranks before every timed call
with a tiny all_reduce (so a rank's time excludes waiting for a late peer); the independent loop mirrors it with
dist.barrier(). measure_collective also refreshes the input (a copy from a pristine source, untimed) and checks
the output (untimed) around every call; the independent loop refreshes its buffer the same way, outside the
timed region, so both time an all_reduce of the same values from a buffer just written (cache state alike) —
`--no-refresh` drops that copy and all-reduces a zero buffer in place instead (zeros keep the sums finite).
To share the machine's noise fairly, each method's `--repeats` timed iterations are split into `--rounds`
chunks that alternate with the other method's (A B, B A, A B, ...), and each method's times are pooled.

    python benchmarks/interconnect_vs_independent.py [--nproc 2] [--sizes 16M,64M] [--repeats 60] [--backend gloo]

The default sizes are bandwidth-bound: over loopback TCP on a small shared host, times below a few MiB are
bimodal (relative IQR 0.5-2), so two medians of them differ by chance more than the 10% band.

Rank 0 prints, per size, both busbw figures, the ratio (acceldoctor / independent) and both relative IQRs
(interquartile range / median of the per-iteration times: how noisy each figure is), then whether every ratio
lies in 0.9-1.1. A ratio outside that band with small IQRs means acceldoctor times something the plain loop does
not (or misses something it does); with IQRs of the order of the gap it is noise — rerun, or raise --repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from acceldoctor.checks.performance._timing import Measurement
from acceldoctor.devices.backends import synchronize
from acceldoctor.interconnect import stats
from acceldoctor.interconnect.collectives import measure_collective
from acceldoctor.interconnect.launch import free_port

LOW, HIGH = 0.9, 1.1
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
GROUP_TIMEOUT_S = 120


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    unit = text[-1] if text and text[-1] in UNITS else ""
    return int(float(text[: len(text) - len(unit)]) * UNITS[unit])


def human(size: int) -> str:
    for unit in ("G", "M", "K"):
        if size >= UNITS[unit] and size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]}{unit}"
    return str(size)


def independent_times(elements: int, iterations: int, warmup: int, device: torch.device, refresh: bool) -> list[float]:
    """Per timed iteration, the slowest rank's seconds for dist.all_reduce of `elements` float32."""
    rank = dist.get_rank()
    source = torch.full((elements,), float(rank + 1), dtype=torch.float32, device=device)
    x = source.clone() if refresh else torch.zeros(elements, dtype=torch.float32, device=device)
    times = []
    for i in range(warmup + iterations):
        if refresh:
            x.copy_(source)  # untimed, like measure_collective's input refresh
        dist.barrier()  # mirrors measure_collective's aligning all_reduce
        synchronize(device)
        t0 = time.perf_counter()
        dist.all_reduce(x)
        synchronize(device)
        t = time.perf_counter() - t0
        if i >= warmup:
            times.append(t)
    slowest = torch.tensor(times, dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    return slowest.tolist()


def chunks(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def rank_main(rank: int, args: argparse.Namespace, port: int) -> None:
    torch.set_num_threads(1)  # the ranks share the machine's cores
    if args.backend == "nccl":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group(args.backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.nproc,
                            timeout=datetime.timedelta(seconds=GROUP_TIMEOUT_S))
    try:
        n = dist.get_world_size()
        rows = []
        for size in args.sizes:
            elements = stats.elements_for("all_reduce", size, 4, n)
            ours: list[float] = []
            theirs: list[float] = []
            results = []
            for i, count in enumerate(chunks(args.repeats, args.rounds)):
                for method in ("acceldoctor", "independent")[:: 1 if i % 2 == 0 else -1]:
                    if method == "acceldoctor":
                        results.append(measure_collective("all_reduce", size, device=device, warmup=args.warmup,
                                                          repeats=count, dtype=torch.float32))
                        ours.extend(results[-1].times_s)
                    else:
                        theirs.extend(independent_times(elements, count, args.warmup, device, args.refresh))
            # acceldoctor's own busbw arithmetic over the pooled times
            pooled = dataclasses.replace(results[0], times_s=tuple(ours))
            assert pooled.elements == elements
            median = statistics.median(theirs)
            independent_busbw = elements * 4 / median * 2 * (n - 1) / n / stats.GB
            rows.append((size, pooled.size_bytes, pooled.busbw_gbps, independent_busbw, pooled.relative_iqr,
                         Measurement(tuple(theirs), 1).relative_spread, sum(r.wrong_elements for r in results)))
        if rank == 0:
            report(rows, args, n)
    finally:
        dist.destroy_process_group()


def report(rows: list[tuple], args: argparse.Namespace, n: int) -> None:
    refresh = "refreshed" if args.refresh else "zeros, not refreshed"
    print(f"all_reduce float32, {args.backend}, {n} ranks, {args.repeats} timed iterations per method in "
          f"{min(args.rounds, args.repeats)} alternating rounds, warm-up {args.warmup} per round; "
          f"independent buffer {refresh}")
    print(f"{'size':>6} {'bytes':>10} {'acceldoctor GB/s':>17} {'independent GB/s':>17} {'ratio':>6} "
          f"{'rIQR acceldoctor':>17} {'rIQR independent':>17}")
    inside = True
    for size, size_bytes, ours, theirs, our_iqr, their_iqr, wrong in rows:
        ratio = ours / theirs
        inside &= LOW <= ratio <= HIGH
        flag = "" if LOW <= ratio <= HIGH else "  <- outside"
        print(f"{human(size):>6} {size_bytes:>10} {ours:>17.4f} {theirs:>17.4f} {ratio:>6.3f} {our_iqr:>17.3f} "
              f"{their_iqr:>17.3f}{flag}")
        if wrong:
            print(f"  warning: acceldoctor found {wrong} wrong elements at {human(size)}")
    print(f"all ratios within {LOW}-{HIGH}: {'yes' if inside else 'no'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--sizes", default="16M,64M", help="comma-separated bytes, K/M/G = 2^10/2^20/2^30")
    parser.add_argument("--repeats", type=int, default=60, help="timed iterations per method and size")
    parser.add_argument("--rounds", type=int, default=12, help="alternating chunks the repeats are split into")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations before each round")
    parser.add_argument("--backend", default="gloo")
    parser.add_argument("--no-refresh", dest="refresh", action="store_false",
                        help="independent loop: all-reduce a zero buffer in place, no untimed refresh copy")
    args = parser.parse_args()
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if args.nproc < 2 or args.repeats < 1:
        parser.error("need --nproc >= 2 and --repeats >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(rank_main, args=(args, free_port()), nprocs=args.nproc, join=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
