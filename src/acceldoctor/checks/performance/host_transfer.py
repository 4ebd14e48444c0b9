"""performance.host_transfer: host-to-device and device-to-host copy bandwidth, pinned and pageable, over a size
sweep, judged against the spec sheet's host link."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.performance._spec import device_name, judge_efficiency, spec_for
from acceldoctor.checks.performance._timing import measure
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.report.model import Metric, Status

MI = 2**20
# Copy sizes in MiB swept when `sizes_mib` is left empty, by device kind and level. Small copies show the per-copy
# overhead, large ones the link's sustained rate; the best size is reported.
CPU_SIZES_MIB = {"standard": [1, 4, 16], "full": [1, 16, 64]}
ACCELERATOR_SIZES_MIB = {"standard": [1, 16, 64, 256], "full": [1, 16, 64, 256, 1024]}
DIRECTIONS = {"h2d": "host-to-device", "d2h": "device-to-host"}
LINK_HINT = ("check the link's width and generation (nvidia-smi -q | grep -A3 Link; lspci -vv, LnkSta), the "
             "process's NUMA node (numactl) and the IOMMU settings")


@dataclass(frozen=True)
class _Figure:
    direction: str
    memory: str  # "pinned" or "pageable"
    gbs: float
    spread: float
    size_mib: int


def _sizes_mib(ctx: CheckContext) -> list[int]:
    sizes = ctx.params.get("sizes_mib") or []
    if sizes:
        return sorted(int(s) for s in sizes)
    table = CPU_SIZES_MIB if ctx.device.type == "cpu" else ACCELERATOR_SIZES_MIB
    return list(table.get(ctx.level, table["standard"]))


def _has_pinned_memory(device: torch.device) -> bool:
    if device.type == "cpu":
        return False  # torch pins host memory only for an accelerator backend; there is nothing to stage for
    try:
        return torch.empty(1, pin_memory=True).is_pinned()
    except (RuntimeError, NotImplementedError):
        return False


def _measure_size(ctx: CheckContext, size_mib: int, memory: str, warmup: int, repeats: int) -> list[_Figure]:
    n = size_mib * MI
    pinned = memory == "pinned"
    on_device = torch.empty(n, dtype=torch.uint8, device=ctx.device).fill_(1)
    # Filling touches every page, so that first-touch page faults of pageable memory are not timed.
    host = torch.empty(n, dtype=torch.uint8, pin_memory=pinned).fill_(2)
    # Pinned copies are asynchronous DMA; a pageable copy is staged by the driver and blocking anyway.
    copies = {"h2d": lambda: on_device.copy_(host, non_blocking=pinned),
              "d2h": lambda: host.copy_(on_device, non_blocking=pinned)}
    figures = []
    for direction, copy in copies.items():
        m = measure(copy, ctx.device, warmup=warmup, repeats=repeats)
        figures.append(_Figure(direction, memory, m.rate(n) / 1e9, m.relative_spread, size_mib))
    return figures


def _summary(best: dict[tuple[str, str], _Figure], on_cpu: bool) -> str:
    parts = []
    for direction, words in DIRECTIONS.items():
        rates = [f"{f.gbs:.1f} GB/s{'' if on_cpu else ' ' + f.memory}" for (d, _), f in best.items() if d == direction]
        parts.append(f"{words} {', '.join(rates)}")
    return "; ".join(parts)


@register_check(
    id="performance.host_transfer",
    title="Host-to-device and device-to-host copies reach the host link's spec sheet bandwidth",
    levels=("standard", "full"),
    timeout_s=180.0,
    params=(
        Param("sizes_mib", [], "Copy sizes in MiB to sweep, e.g. [1, 64]; empty = chosen by device kind: 1, 4 and "
              "16 MiB on the CPU (1, 16, 64 at full), 1 to 256 MiB on accelerators (1 GiB added at full)."),
        Param("warmup", 2, "Untimed copies before each size, direction and memory kind is measured.", minimum=0),
        Param("repeats", 10, "Timed copies per size, direction and memory kind; the median is reported, the "
              "interquartile range as spread.", {"full": 20}, minimum=5),
        Param("warn_efficiency", 0.5, "Warn when the best pinned copy rate of a direction is below this share of "
              "the spec sheet's host link bandwidth per direction.", minimum=0, maximum=1),
        Param("fail_efficiency", 0.25, "Fail when the best pinned copy rate of a direction is below this share of "
              "the spec sheet's host link bandwidth per direction.", minimum=0, maximum=1),
    ),
    doc=CheckDoc(
        verifies="Copies a buffer from host memory to the device and back, from pinned (page-locked) host memory "
                 "with asynchronous `copy_(non_blocking=True)` and from ordinary pageable host memory, over a "
                 "sweep of sizes (1 to 256 MiB on accelerators, 1 GiB added at full level). Each size, direction "
                 "and memory kind is warmed up, then timed in repeats (device events on accelerators). Reports, "
                 "per direction and memory kind, the best size's median rate in GB/s (10^9 bytes; "
                 "`h2d_pinned_bandwidth`, `d2h_pinned_bandwidth`, `h2d_pageable_bandwidth`, "
                 "`d2h_pageable_bandwidth`) with its relative interquartile range (`*_spread`), the size each "
                 "direction's best rate was reached at (`h2d_peak_size`, `d2h_peak_size`) and, when the device's spec "
                 "sheet gives the host link's bandwidth, the pinned rates' share of it (`h2d_efficiency`, "
                 "`d2h_efficiency`). On the CPU device there is no host link: both directions are a memcpy "
                 "between two host buffers, pinned memory does not apply, and the pageable figures stand in.",
        why="Every batch a job feeds the device, every checkpoint it saves and every tensor it offloads crosses "
            "the host link (PCIe, or the vendor's host interconnect). A link that trained at a lower width or "
            "generation than it should (x8 instead of x16, Gen3 instead of Gen5, often after a reseat or from a "
            "riser), a process running on the wrong NUMA node, or an IOMMU in translation mode can halve or "
            "quarter the transfer rate without any error: data loading and offloading stall and the device "
            "sits idle.",
        failure_means="`warn`: the best pinned copy rate of a direction is below `warn_efficiency` (50%) of the "
                      "spec sheet's host link bandwidth per direction; `fail`: below `fail_efficiency` (25%). "
                      "The message names the direction, the measured and the advertised figure. A healthy "
                      "PCIe Gen4 or Gen5 x16 link reaches roughly 80% of its theoretical bandwidth with pinned "
                      "memory (about 25 GB/s of 32 on Gen4, 50 of 64 on Gen5), so a figure near half or a "
                      "quarter of that is the signature of a link running at x8 or x4, or one generation "
                      "lower. Pageable copies go through a staging buffer and reach well below the link, so they "
                      "are reported, not judged. Without a spec sheet entry (and on the CPU) the rates are "
                      "reported without a verdict.",
        remedy="Re-run with the device and host otherwise idle. Compare the link's current and maximum width and "
               "speed: `nvidia-smi -q | grep -A3 Link` (or `rocm-smi --showbus`, `npu-smi info`), and `lspci -vv "
               "-s BUS_ID` (LnkSta against LnkCap); a downgraded link needs the card reseated, the riser or slot "
               "checked, or the BIOS PCIe setting corrected. Run the process on the NUMA node the device is "
               "attached to (`nvidia-smi topo -m`, `numactl --cpunodebind=N --membind=N`), and check that the "
               "IOMMU is off or in passthrough mode (`iommu=pt` on the kernel command line). Compare with "
               "another node of the same model using `acceldoctor check --baseline`.",
    ),
)
def check_host_transfer(ctx: CheckContext) -> CheckOutcome:
    sizes = _sizes_mib(ctx)
    warmup, repeats = int(ctx.params["warmup"]), int(ctx.params["repeats"])
    on_cpu = ctx.device.type == "cpu"
    memories = ["pinned", "pageable"] if _has_pinned_memory(ctx.device) else ["pageable"]
    best: dict[tuple[str, str], _Figure] = {}
    total, done = len(sizes) * len(memories), 0
    for size_mib in sizes:
        for memory in memories:
            ctx.progress(done, total, f"{size_mib} MiB {memory}")
            for figure in _measure_size(ctx, size_mib, memory, warmup, repeats):
                key = (figure.direction, memory)
                if key not in best or figure.gbs > best[key].gbs:
                    best[key] = figure
            done += 1
    ctx.progress(total, total, "done")
    best = {(d, m): best[(d, m)] for d in DIRECTIONS for m in memories}  # a stable order for metrics and message
    metrics: list[Metric] = []
    for (direction, memory), f in best.items():
        metrics += [Metric(name=f"{direction}_{memory}_bandwidth", value=f.gbs, unit="GB/s"),
                    Metric(name=f"{direction}_{memory}_spread", value=f.spread, unit="ratio")]
    # Pinned copies are what the link can do. Pageable ones are judged only on the CPU device, where the memcpy
    # is the whole transfer; on an accelerator without pinned memory they would understate a healthy link.
    judged_memory = memories[0] if memories[0] == "pinned" or on_cpu else None
    judged = {d: best[(d, judged_memory)] for d in DIRECTIONS} if judged_memory else {}
    for direction in DIRECTIONS:
        fastest = max((f for (d, _), f in best.items() if d == direction), key=lambda f: f.gbs)
        metrics.append(Metric(name=f"{direction}_peak_size", value=fastest.size_mib, unit="MiB"))
    span = f"{sizes[0]}-{sizes[-1]} MiB" if len(sizes) > 1 else f"{sizes[0]} MiB"
    if on_cpu:
        opening = (f"On the CPU device there is no host link: both directions measure a host memcpy between two "
                   f"buffers in the same memory (pinned memory does not apply); best over {span} copies: ")
    else:
        subject = device_name(ctx.device) or str(ctx.device)
        no_pinned = "" if "pinned" in memories else " (no pinned memory on this device; pageable only)"
        opening = f"Host link of {subject}{no_pinned}, best over {span} copies: "
    summary = opening + _summary(best, on_cpu)
    spec = spec_for(ctx.device)
    efficiencies = {d: spec.efficiency("host_link", None, f.gbs) for d, f in judged.items()} if spec else {}
    efficiencies = {d: e for d, e in efficiencies.items() if e is not None}
    if not efficiencies:
        if not judged:
            why_not = "pageable copies are not judged against the host link"
        else:
            why_not = "no spec sheet to compare with" if spec is None else "the spec sheet gives no host link figure"
        return CheckOutcome(Status.PASS, f"{summary} ({why_not}).", metrics)
    link = f"{spec.host_link_gbs:g} GB/s per direction" + (f" ({spec.host_link})" if spec.host_link else "")
    warn_at, fail_at = float(ctx.params["warn_efficiency"]), float(ctx.params["fail_efficiency"])
    metrics += [Metric(name=f"{d}_efficiency", value=e, unit="ratio", threshold=warn_at)
                for d, e in efficiencies.items()]
    verdicts = {d: judge_efficiency(e, warn_at, fail_at) for d, e in efficiencies.items()}
    low = [d for d, v in verdicts.items() if v is not Status.PASS]
    if not low:
        shares = " and ".join(f"{e:.0%} ({DIRECTIONS[d]})" for d, e in efficiencies.items())
        return CheckOutcome(Status.PASS, f"{summary}; {judged_memory} copies reach {shares} efficiency against "
                                         f"the spec sheet's {link}.", metrics)
    status = Status.FAIL if Status.FAIL in verdicts.values() else Status.WARN
    problems = []
    for d in low:
        limit = fail_at if verdicts[d] is Status.FAIL else warn_at
        problems.append(f"{judged_memory} {DIRECTIONS[d]} copies reach {judged[d].gbs:.1f} GB/s, only "
                        f"{efficiencies[d]:.1%} efficiency (below {limit:.0%})")
    hint = "" if on_cpu else f"; {LINK_HINT}"
    return CheckOutcome(status, f"Host transfers are slow against the spec sheet's {link}: "
                                f"{'; '.join(problems)}{hint}.", metrics)
