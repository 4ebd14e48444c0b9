"""Memory soak: fill most of the device's free memory with a pattern, read every word back, change pattern, repeat.

The patterns are the classic memory-test set: all zeros, all ones, alternating bits both ways, a walking one
(which bit changes with every pass) and seeded random words. A word that reads back differently from what was
written is a memory error the device did not report (or an uncorrectable one it did); the first one's byte offset
is kept, since a stuck bit shows at the same address pass after pass.
"""

from __future__ import annotations

import torch

from acceldoctor.stress.workloads.base import Tally, Workload

MiB = 1 << 20
BLOCK_WORDS = MiB // 4  # one pattern block: 1 MiB of int32 words, tiled over the whole buffer
VERIFY_BLOCKS = 256  # blocks compared at once: bounds the comparison's scratch memory to 64 MiB of booleans
CPU_BYTES = 128 * MiB  # host RAM is not the device under test; enough to leave the caches
DEVICE_SHARE = 0.6  # of the memory still free once the other workloads are set up (they allocate as they run)
HEADROOM = 2 << 30
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", RuntimeError)  # torch < 2.5 raised torch.cuda's, a RuntimeError
PATTERN_NAMES = ("zeros", "ones", "0xAA", "0x55", "walking one", "random")


def soak_bytes(device: torch.device) -> int:
    from acceldoctor.checks.environment._memory import memory_info

    info = memory_info(device)
    if device.type == "cpu":
        available = info.free if info else CPU_BYTES * 20
        return max(MiB, min(CPU_BYTES, available // 20) // MiB * MiB)
    free = info.free if info else 1 << 30
    # 60% of what is free, and never the last HEADROOM: the other workloads allocate as they run
    return max(MiB, int(min(free * DEVICE_SHARE, free - HEADROOM)) // MiB * MiB)


def pattern_block(index: int, device: torch.device) -> tuple[str, torch.Tensor]:
    """The pass's name and its 1 MiB block of words; pass `index` cycles through the patterns."""
    kind = PATTERN_NAMES[index % len(PATTERN_NAMES)]
    cycle = index // len(PATTERN_NAMES)
    if kind == "random":
        words = torch.randint(-(2**31), 2**31, (BLOCK_WORDS,), dtype=torch.int64,
                              generator=torch.Generator().manual_seed(cycle)).to(torch.int32)
        return f"random (seed {cycle})", words.to(device)
    value = {"zeros": 0, "ones": -1, "0xAA": -0x55555556, "0x55": 0x55555555,
             "walking one": 1 << (cycle % 31)}[kind]
    name = f"walking one (bit {cycle % 31})" if kind == "walking one" else kind
    return name, torch.full((BLOCK_WORDS,), value, dtype=torch.int32, device=device)


class MemorySoak(Workload):
    name = "memory_soak"
    check = "stability.memory_soak"
    unit = "GB/s"
    unit_scale = 1e9
    share = 0.15

    def __init__(self, device: torch.device, nbytes: int | None = None):
        super().__init__(device)
        self.nbytes = nbytes
        self.passes = 0

    def describe(self) -> str:
        return f"{self.nbytes / MiB:.0f} MiB of device memory" if self.nbytes else "device memory"

    def sample(self, tally: Tally) -> dict:
        return {**super().sample(tally), "bytes": self.nbytes}

    def prepare(self) -> None:
        self.nbytes = self.nbytes or soak_bytes(self.device)
        while True:
            try:
                self.buffer = torch.empty(self.nbytes // (BLOCK_WORDS * 4), BLOCK_WORDS, dtype=torch.int32,
                                          device=self.device)
                return
            except OUT_OF_MEMORY:
                # free memory as reported is not always what one allocation can get (fragmentation, other
                # processes): halve until it fits, down to 64 MiB
                if self.nbytes <= 64 * MiB:
                    raise
                self.nbytes = self.nbytes // 2 // MiB * MiB

    def step(self, tally: Tally) -> None:
        name, block = pattern_block(self.passes, self.device)
        self.passes += 1
        self.buffer.copy_(block.expand_as(self.buffer))
        for start in range(0, self.buffer.shape[0], VERIFY_BLOCKS):
            chunk = self.buffer[start:start + VERIFY_BLOCKS]
            wrong_per_block = (chunk != block).sum(dim=1)
            wrong = int(wrong_per_block.sum())
            if wrong:
                first = int(wrong_per_block.nonzero()[0])
                word = int((chunk[first] != block).nonzero()[0])
                offset = ((start + first) * BLOCK_WORDS + word) * 4
                tally.add_errors(wrong, 0, f"byte offset {offset:#x} of the soak buffer, pattern {name}")
        tally.iterations += 1
        tally.work += 2.0 * self.buffer.numel() * 4  # every byte written once and read once
