"""environment.memory_pattern: a memtest-style pattern test of device memory, compared on the device."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome, SkipCheck
from acceldoctor.checks.environment._memory import MiB, flipped_bits, human_bytes, memory_info, release_cached
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.report.model import Metric, Status

SHOWN = 4  # corrupted words spelled out in the message
TRACKED = 64  # distinct corrupted words remembered
MASK32 = 0xFFFFFFFF
RANDOM_BLOCK = 8192  # words of seeded random data, repeated across each chunk and keyed per chunk


@register_check(
    id="environment.memory_pattern",
    title="Device memory holds every bit pattern written to it (walking ones, address-in-address, random)",
    levels=("quick", "standard", "full"),
    timeout_s=600.0,
    params=(
        Param("size_mib", 256, "MiB of device memory to test; 'auto' = `fraction` of the reported free memory.",
              {"quick": 32, "full": "auto"}, choices=("auto",), minimum=1),
        Param("fraction", 0.5, "With size_mib='auto': share of the free memory to test.", minimum=0.001,
              maximum=0.95),
        Param("cpu_cap_mib", 2048, "On the cpu device (the host running the tool) never test more than this."),
        Param("walking_shifts", 8, "Walking-ones passes (each also run inverted as walking zeros); 32 covers "
              "every bit of every word.", {"quick": 2, "full": 32}),
        Param("random_passes", 2, "Passes with seeded random patterns.", {"full": 8}),
        Param("chunk_mib", 64, "Patterns are generated and compared in chunks of this size."),
    ),
    doc=CheckDoc(
        verifies="Writes memtest-style patterns into a large device buffer and reads them back: address-in-"
                 "address (each 64-bit word holds its own index, then the complement), walking ones and walking "
                 "zeros over 32-bit words (word i holds bit (i + shift) mod 32), and seeded random patterns. The "
                 "whole buffer is written before any of it is read, so a write landing at the wrong address "
                 "shows; the comparison runs on the device and only the mismatches are copied back. 32 MiB at "
                 "quick, 256 MiB at standard, half of the free memory at full (at most 2 GiB of host RAM on cpu).",
        why="HBM and GDDR develop stuck or weak bits, ECC can be disabled or exhausted, and address-decoding "
            "faults make two addresses share a cell. Users of every accelerator family have lost weeks to "
            "training runs that diverged on one node whose memory flipped a bit; ECC counters do not always "
            "report it, a pattern test does.",
        failure_means="A word read back differently from what was written: the message gives the byte offset "
                      "within the tested buffer, the expected and actual bit patterns and which bits flipped. "
                      "The same bit flipping at many offsets points at a data line; offsets a power of two "
                      "apart at address decoding.",
        remedy="Re-run `acceldoctor check --select environment.memory_pattern --level full`; if it repeats, "
               "drain the node, read the ECC/RAS counters (`nvidia-smi -q -d ECC`, `npu-smi info -t health`, "
               "`rocm-smi --showrasinfo`) and send the report to the vendor: the chip likely needs replacing.",
    ),
)
def check_memory_pattern(ctx: CheckContext) -> CheckOutcome:
    words = max(_buffer_bytes(ctx) // 4 // RANDOM_BLOCK, 1) * RANDOM_BLOCK
    chunk_words = min(max(int(ctx.params["chunk_mib"]) * MiB // 4 // RANDOM_BLOCK, 1) * RANDOM_BLOCK, words)
    n_chunks = words // chunk_words
    try:
        buffer = torch.empty(n_chunks * chunk_words, dtype=torch.int32, device=ctx.device)
        return _run_passes(ctx, buffer, chunk_words)
    finally:
        buffer = None
        release_cached(ctx.device)


def _buffer_bytes(ctx: CheckContext) -> int:
    size = ctx.params["size_mib"]
    if size != "auto":
        return int(size) * MiB
    info = memory_info(ctx.device)
    if info is None:
        raise SkipCheck(f"cannot tell how much memory {ctx.device} has free; pass size_mib explicitly")
    wanted = int(info.free * float(ctx.params["fraction"]))
    if ctx.device.type == "cpu":
        wanted = min(wanted, int(ctx.params["cpu_cap_mib"]) * MiB, info.free // 4)
    return wanted


@dataclass
class _Corruption:
    """One corrupted 32-bit word: where, the first wrong read, and every bit seen flipped there."""

    offset: int
    first_pass: str
    expected: int
    actual: int
    bits: set[int] = field(default_factory=set)
    passes: int = 0

    def describe(self) -> str:
        bits = sorted(self.bits)
        return (f"byte offset {self.offset} (0x{self.offset:x}): bit{'s' if len(bits) > 1 else ''} "
                f"{', '.join(map(str, bits))} flipped in {self.passes} pass(es), first in {self.first_pass} "
                f"(expected 0x{self.expected & MASK32:08x}, read 0x{self.actual & MASK32:08x})")


@dataclass
class _Findings:
    corrupted_words: int = 0
    failed_passes: list[str] = field(default_factory=list)
    words: dict[int, _Corruption] = field(default_factory=dict)  # by byte offset, at most TRACKED


def _run_passes(ctx: CheckContext, buffer: torch.Tensor, chunk_words: int) -> CheckOutcome:
    """Each pass writes the whole buffer chunk by chunk, then verifies it chunk by chunk.

    Patterns are generated in place into one chunk-sized `expected` buffer (fresh allocations would
    dominate the time); `advance(expected, j)` turns chunk j-1's pattern into chunk j's.
    """
    findings, passes = _Findings(), 0
    dev = ctx.device
    expected = torch.empty(chunk_words, dtype=torch.int32, device=dev)
    times = [0.0, 0.0]

    total_passes = 2 + 2 * len(_shifts(int(ctx.params["walking_shifts"]))) + int(ctx.params["random_passes"])

    def run(name, width, init, advance=None):
        nonlocal passes
        ctx.progress(passes, total_passes, name)
        view, exp = (buffer.view(torch.int64), expected.view(torch.int64)) if width == 64 else (buffer, expected)
        chunks = view.split(exp.numel())
        for phase in (0, 1):  # 0 writes every chunk, 1 reads every chunk back
            start, bad = time.perf_counter(), []
            init(exp)
            for j, chunk in enumerate(chunks):
                if j and advance is not None:
                    advance(exp, j)
                if phase == 0:
                    chunk.copy_(exp)
                elif not torch.equal(chunk, exp):  # compared on the device; only a bool comes back
                    bad.append(j)
            ctx.synchronize()
            times[phase] += time.perf_counter() - start
        passes += 1
        for j in bad:
            init(exp)
            for k in range(1, j + 1):
                if advance is not None:
                    advance(exp, k)
            _record(findings, name, chunks[j], exp, j * exp.numel() * exp.element_size())

    half = chunk_words // 2
    index64 = torch.arange(half, dtype=torch.int64, device=dev)
    run("address-in-address", 64, lambda e: e.copy_(index64), lambda e, j: e.add_(half))
    run("address-in-address inverted", 64, lambda e: torch.bitwise_not(index64, out=e), lambda e, j: e.sub_(half))
    bit_table = torch.tensor([(1 << b) - (1 << 32 if b == 31 else 0) for b in range(32)], dtype=torch.int32,
                             device=dev)
    for s in _shifts(int(ctx.params["walking_shifts"])):
        ones = bit_table.roll(-s)  # word i holds bit (i + s) mod 32
        run(f"walking ones (shift {s})", 32, lambda e, p=ones: e.view(-1, 32).copy_(p.expand(e.numel() // 32, 32)))
        run(f"walking zeros (shift {s})", 32,
            lambda e, p=~ones: e.view(-1, 32).copy_(p.expand(e.numel() // 32, 32)))
    for r in range(int(ctx.params["random_passes"])):
        block = torch.randint(-2**31, 2**31, (RANDOM_BLOCK,), generator=ctx.generator(salt=1000 + r),
                              dtype=torch.int32).to(dev)

        def init(e, b=block, r=r):
            e.view(-1, RANDOM_BLOCK).copy_(b.expand(e.numel() // RANDOM_BLOCK, RANDOM_BLOCK))
            e.bitwise_xor_(_key(r, 0))

        run(f"random (seed {r})", 32, init, lambda e, j, r=r: e.bitwise_xor_(_key(r, j - 1) ^ _key(r, j)))
    write_s, verify_s = times

    total = buffer.numel() * 4
    metrics = [
        Metric(name="buffer_bytes", value=total, unit="bytes"),
        Metric(name="passes", value=passes, unit="count"),
        Metric(name="corrupted_words", value=findings.corrupted_words, unit="count", threshold=0),
        Metric(name="write_rate", value=total * passes / write_s / 1e9, unit="GB/s"),
        Metric(name="verify_rate", value=total * passes / verify_s / 1e9, unit="GB/s"),
    ]
    if findings.corrupted_words:
        shown = list(findings.words.values())[:SHOWN]
        more = f"; {len(findings.words) - SHOWN} more address(es)" if len(findings.words) > SHOWN else ""
        return CheckOutcome(Status.FAIL, (
            f"{findings.corrupted_words} corrupted word(s) in {len(findings.failed_passes)} of {passes} passes over "
            f"{human_bytes(total)}: " + "; ".join(c.describe() for c in shown) + more + "."), metrics)
    return CheckOutcome(Status.PASS, f"{human_bytes(total)} of device memory held every pattern in {passes} passes "
                                     "(address-in-address, walking ones and zeros, random); no bit flipped.", metrics)


def _shifts(count: int) -> list[int]:
    """`count` shifts spread over the 32 bit positions (all 32 when count >= 32)."""
    count = min(max(count, 0), 32)
    return sorted({round(i * 32 / count) % 32 for i in range(count)}) if count else []


def _key(seed: int, chunk: int) -> int:
    """A per-chunk 32-bit key (splitmix64 finaliser), so random chunks differ; signed for int32 arithmetic."""
    z = (seed * 0x9E3779B97F4A7C15 + chunk * 0xBF58476D1CE4E5B9 + 1) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    z = (z ^ (z >> 31)) & 0xFFFFFFFF
    return z - 2**32 if z >= 2**31 else z


def _record(findings: _Findings, name: str, chunk: torch.Tensor, expected: torch.Tensor, first_byte: int) -> None:
    """Count a failing chunk's wrong words; remember the first few, as 32-bit words by byte offset."""
    chunk, expected = chunk.view(torch.int32), expected.view(torch.int32)  # 64-bit passes too, so offsets merge
    wrong = chunk.ne(expected)
    findings.corrupted_words += int(wrong.sum().item())
    findings.failed_passes.append(name)
    where = torch.nonzero(wrong).flatten()[:TRACKED]
    for index, got, want in zip(where.tolist(), chunk[where].tolist(), expected[where].tolist(), strict=True):
        offset = first_byte + 4 * index
        if offset not in findings.words:
            if len(findings.words) >= TRACKED:
                continue
            findings.words[offset] = _Corruption(offset, name, want, got)
        word = findings.words[offset]
        word.bits.update(flipped_bits(want, got, 32))
        word.passes += 1
