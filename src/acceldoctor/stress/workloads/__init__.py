"""The stress workloads (one module each) and the loop that shares every interval between them.

Each workload declares its name, the check its verdict goes under, its unit and its share of an interval;
`build_workloads` makes the chosen ones for a device, and `run_workloads` runs each for its share of every
interval and reports one sample per interval (the report's timeline format, see report/model.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from acceldoctor.devices.backends import synchronize
from acceldoctor.stress.workloads.base import Tally, Workload
from acceldoctor.stress.workloads.gemm import GemmBurn, fast_dtype
from acceldoctor.stress.workloads.memory import MemorySoak
from acceldoctor.stress.workloads.train_loop import TrainLoop

# What `--workload` accepts, each with what it builds on a device.
WORKLOAD_KINDS = ("gemm", "memory", "train")
FP32_GEMM = "gemm_fp32"


def build_workloads(device: torch.device, kinds: tuple[str, ...] = WORKLOAD_KINDS, *, seed: int = 0,
                    gemm_size: int | None = None) -> list[Workload]:
    """The workloads of `kinds` for `device`; the memory soak last, so it sizes itself to what the others left."""
    workloads: list[Workload] = []
    if "gemm" in kinds:
        workloads.append(GemmBurn(device, torch.float32, size=gemm_size, seed=seed))
        if (dtype := fast_dtype(device)) is not None:
            workloads.append(GemmBurn(device, dtype, size=gemm_size, seed=seed))
    if "train" in kinds:
        workloads.append(TrainLoop(device, seed=seed))
    if "memory" in kinds:
        workloads.append(MemorySoak(device))
    return workloads


def interval_sample(t_s: float, workloads: list[Workload], tallies: list[Tally]) -> dict:
    """One timeline sample: the float32 GEMM's throughput up front (drift is judged on it), errors summed."""
    per_workload = {w.name: w.sample(t) for w, t in zip(workloads, tallies, strict=False)}
    fp32 = per_workload.get(FP32_GEMM, {})
    return {"t_s": round(t_s, 3), "tflops": fp32.get("rate", 0.0), "iterations": fp32.get("iterations", 0),
            "wrong_elements": sum(t.wrong_elements for t in tallies),
            "nan_elements": sum(t.nan_elements for t in tallies), "workloads": per_workload}


def run_workloads(device: torch.device, workloads: list[Workload], duration_s: float, *, interval_s: float = 1.0,
                  on_interval: Callable[[dict], None] | None = None,
                  on_workload: Callable[[int], None] | None = None,
                  on_prepared: Callable[[], None] | None = None) -> list[dict]:
    """Run every workload for its share of each interval until `duration_s` is over; one sample per interval.

    `on_workload(i)` is told before workload i prepares and before each of its slices (the stress parent keeps it
    to say which workload a hung device was in).
    """
    on_workload = on_workload or (lambda index: None)
    for index, workload in enumerate(workloads):
        on_workload(index)
        workload.prepare()
        if on_prepared is not None:  # a sign of life for the watchdog: a golden can take a while
            on_prepared()
    synchronize(device)
    total_share = sum(w.share for w in workloads)
    begin = time.perf_counter()
    samples = []
    while True:
        tallies = [Tally() for _ in workloads]
        for index, (workload, tally) in enumerate(zip(workloads, tallies, strict=False)):
            on_workload(index)
            slice_s = interval_s * workload.share / total_share
            start = time.perf_counter()
            while True:  # at least one step, even when a step outlasts the slice
                workload.step(tally)
                if time.perf_counter() - start >= slice_s:
                    break
            workload.flush(tally)
            synchronize(device)
            tally.seconds = time.perf_counter() - start
        sample = interval_sample(time.perf_counter() - begin, workloads, tallies)
        samples.append(sample)
        if on_interval is not None:
            on_interval(sample)
        if sample["t_s"] >= duration_s:
            return samples
