"""stability.memory_soak: most of the device's free memory written with patterns and read back, pass after pass."""

from __future__ import annotations

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.checks.stability._burn import burn_for_check
from acceldoctor.stress.verdict import judge_memory
from acceldoctor.stress.workloads.memory import MemorySoak


@register_check(
    id="stability.memory_soak",
    title="Memory soak: every word of most of the free memory reads back as written, pattern after pattern",
    levels=("full",),
    timeout_s=120.0,
    doc=CheckDoc(
        verifies=("60% of the device memory still free (128 MiB of RAM on the CPU) is filled with one pattern at a "
                  "time, all zeros, all ones, 0xAA, 0x55, a walking one and seeded random words, and every word is "
                  "read back and compared with what was written; the first wrong word's byte offset is reported."),
        why=("A weak memory cell or a stuck data line corrupts whatever tensor lands on it, silently where the "
             "memory has no ECC or the error is beyond what ECC corrects; it shows only under some bit patterns, "
             "and a job that happens to allocate there fails in ways that look like software bugs."),
        failure_means=("`fail`: device memory returned words other than those written. A failure at the same "
                       "offset in pass after pass is a stuck bit in that part of the memory."),
        remedy=("Take the device out of service; run `acceldoctor stress --workload memory -d DEVICE` for longer to "
                "see how often and where, look for ECC / retired-page / row-remapping counts in the vendor tool "
                "(`nvidia-smi -q -d ECC,ROW_REMAPPER`, `rocm-smi --showrasinfo`, `npu-smi info -t ecc`), and hand "
                "the report to the vendor."),
    ),
    params=(Param("duration_s", 10.0, "Seconds of write-and-verify passes.", minimum=1),),
)
def check_memory_soak(ctx: CheckContext) -> CheckOutcome:
    return judge_memory(str(ctx.device), burn_for_check(ctx, [MemorySoak(ctx.device)]))
