"""performance.launch_latency: what the host pays to launch a tiny kernel, to wait for one, and to synchronize an
idle device, judged against absolute limits on the round trip."""

from __future__ import annotations

import os

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.performance._spec import device_name
from acceldoctor.checks.performance._timing import measure
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.report.model import Metric, Status

# Latency is what the host waits, so it is timed on the host clock: device events would time only the device's
# side, where a tiny kernel takes a few microseconds however long the host took to issue it. Each timed call
# synchronizes by itself, and measure() on the CPU device has nothing left to wait for.
HOST_CLOCK = torch.device("cpu")
# Debug settings that make every launch wait for the device: the usual cause of round trips in the milliseconds.
BLOCKING_VARIABLES = ("CUDA_LAUNCH_BLOCKING", "HIP_LAUNCH_BLOCKING", "AMD_SERIALIZE_KERNEL", "ASCEND_LAUNCH_BLOCKING")
SLOW_HOST_HINT = ("look for a launch-blocking debug setting (CUDA_LAUNCH_BLOCKING=1, ASCEND_LAUNCH_BLOCKING=1), an "
                  "overloaded or frequency-scaled host CPU, or virtualization overhead")


def _us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:.1f} µs" if us < 100 else f"{us:.0f} µs"


def _blocking_settings() -> list[str]:
    return [f"{name}={os.environ[name]}" for name in BLOCKING_VARIABLES
            if os.environ.get(name, "").strip() not in ("", "0")]


@register_check(
    id="performance.launch_latency",
    title="Launching a tiny kernel and waiting for it takes microseconds, not milliseconds",
    levels=("standard", "full"),
    timeout_s=120.0,
    params=(
        Param("launches", 1000, "Tiny kernels issued back to back before one synchronize; the launch latency is "
              "that burst's host time divided by its length.", minimum=1),
        Param("round_trips", 300, "Launch-and-synchronize round trips (and empty synchronizes) per timed repeat.",
              minimum=1),
        Param("warmup", 2, "Untimed bursts or batches before each figure is measured.", minimum=0),
        Param("repeats", 25, "Timed repeats per figure; the median is reported, the interquartile range as spread.",
              {"full": 60}, minimum=5),
        Param("warn_us", 100.0, "Warn when the median launch-and-synchronize round trip exceeds this many "
              "microseconds.", minimum=0),
        Param("fail_us", 1000.0, "Fail when the median launch-and-synchronize round trip exceeds this many "
              "microseconds.", minimum=0),
    ),
    doc=CheckDoc(
        verifies="Times, on the host clock, three things about a one-element tensor on the device: the launch "
                 "latency (`launch_latency`: a burst of back-to-back `torch.add(x, 1, out=y)` calls followed by "
                 "one synchronize, divided by the number of calls — what each launch costs the host when the "
                 "queue keeps the device busy), the synchronize round trip (`sync_round_trip`: launch one such "
                 "add, then wait for it, repeated — the least time any step that waits for a result can take) "
                 "and the empty synchronize (`empty_sync`: synchronize with nothing queued). Each is warmed up "
                 "and timed in repeats; reports the median in microseconds and the relative interquartile range "
                 "(`*_spread`). On the CPU device ops run synchronously: a launch is the host's cost of one tiny "
                 "op and there is no empty synchronize to time.",
        why="Small models, decoding one token at a time, optimizer steps over many small tensors and every "
            "`.item()` or data-dependent branch are bound by launch and synchronize latency, not by compute. A "
            "driver left in a debug mode that makes every launch blocking, a host CPU that is overloaded or "
            "clocked down by power saving, or the overhead of a virtual machine multiplies these latencies by "
            "ten to a hundred — a job slows down many times over while every throughput benchmark looks fine.",
        failure_means="`warn`: the median launch-and-synchronize round trip exceeds `warn_us` (100 µs); `fail`: "
                      "it exceeds `fail_us` (1000 µs). The message gives the round trip and launch figures and "
                      "names any launch-blocking variable set in the environment. The limits are generous on "
                      "purpose, since there is no vendor figure to judge against: a healthy discrete accelerator "
                      "launches a kernel in about 2-10 µs and completes a round trip in about 5-20 µs, and the "
                      "CPU adds one element in about 1-5 µs. Hundreds of microseconds mean a driver in a "
                      "launch-blocking debug mode (CUDA_LAUNCH_BLOCKING=1, HIP_LAUNCH_BLOCKING=1, "
                      "ASCEND_LAUNCH_BLOCKING=1), an overloaded or frequency-scaled host CPU, or virtualization "
                      "overhead. Launch and empty-synchronize figures are reported, not judged.",
        remedy="Unset launch-blocking debug variables (CUDA_LAUNCH_BLOCKING, HIP_LAUNCH_BLOCKING, "
               "AMD_SERIALIZE_KERNEL, ASCEND_LAUNCH_BLOCKING) outside debugging. Re-run with the host otherwise "
               "idle; check the CPU frequency governor (`cpupower frequency-info`, set `performance`) and that "
               "the process runs on the device's NUMA node (`nvidia-smi topo -m`, `numactl`). In a virtual "
               "machine, compare with bare metal or check the passthrough setup. Compare with a healthy node of "
               "the same kind using `acceldoctor check --baseline`.",
    ),
)
def check_launch_latency(ctx: CheckContext) -> CheckOutcome:
    launches, round_trips = int(ctx.params["launches"]), int(ctx.params["round_trips"])
    warmup, repeats = int(ctx.params["warmup"]), int(ctx.params["repeats"])
    on_cpu = ctx.device.type == "cpu"
    x = torch.zeros(1, device=ctx.device)
    y = torch.empty_like(x)

    def burst() -> None:
        for _ in range(launches):
            torch.add(x, 1, out=y)
        ctx.synchronize()

    def round_trip() -> None:
        torch.add(x, 1, out=y)
        ctx.synchronize()

    figures = [("launch_latency", burst, 1), ("sync_round_trip", round_trip, round_trips)]
    if not on_cpu:  # the CPU device's synchronize has nothing to wait for
        figures.append(("empty_sync", ctx.synchronize, round_trips))
    seconds: dict[str, float] = {}
    metrics: list[Metric] = []
    warn_us, fail_us = float(ctx.params["warn_us"]), float(ctx.params["fail_us"])
    for i, (name, call, calls) in enumerate(figures):
        ctx.progress(i, len(figures), name.replace("_", " "))
        m = measure(call, HOST_CLOCK, warmup=warmup, repeats=repeats, calls_per_repeat=calls)
        seconds[name] = m.median / (launches if name == "launch_latency" else 1)
        metrics += [Metric(name=name, value=seconds[name] * 1e6, unit="us",
                           threshold=warn_us if name == "sync_round_trip" else None),
                    Metric(name=f"{name}_spread", value=m.relative_spread, unit="ratio")]
    ctx.progress(len(figures), len(figures), "done")
    launch, trip = _us(seconds["launch_latency"]), _us(seconds["sync_round_trip"])
    round_trip_us = seconds["sync_round_trip"] * 1e6
    limits = f"warn above {warn_us:g} µs, fail above {fail_us:g} µs"
    if round_trip_us > fail_us:
        status, limit = Status.FAIL, f"fail_us={fail_us:g}"
    elif round_trip_us > warn_us:
        status, limit = Status.WARN, f"warn_us={warn_us:g}"
    else:
        status, limit = Status.PASS, ""
    if status is not Status.PASS:
        settings = _blocking_settings()
        cause = f"{' and '.join(settings)} set in the environment make every launch wait for the device" \
            if settings else SLOW_HOST_HINT
        return CheckOutcome(status, f"The synchronize round trip is slow: launching one tiny op on {ctx.device} and "
                                    f"waiting for it takes {trip} (median of {repeats} repeats), above {limit} µs, "
                                    f"and a back-to-back launch costs {launch}; {cause}.", metrics)
    if on_cpu:
        return CheckOutcome(Status.PASS, f"On the CPU device ops run synchronously, so a launch is the host's cost of "
                                         f"one tiny op: {launch} back to back, {trip} with a synchronize after each "
                                         f"(nothing to wait for; {limits}).", metrics)
    subject = device_name(ctx.device) or str(ctx.device)
    return CheckOutcome(Status.PASS, f"Launch latency on {subject}: a tiny kernel costs {launch} to launch back to "
                                     f"back, a launch-and-synchronize round trip {trip}, an empty synchronize "
                                     f"{_us(seconds['empty_sync'])} ({limits} round trip).", metrics)
