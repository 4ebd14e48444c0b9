import torch
from torch.overrides import TorchFunctionMode

from acceldoctor.runner.worker import Task, run_task

SMALL = {"cpu_cap_mib": 24, "chunk_mib": 8}


def _metric(result, name):
    return next(m["value"] for m in result["metrics"] if m["name"] == name)


class FlipBitAfterFill(TorchFunctionMode):
    """A memory cell that does not keep what was written: one bit of one word in the second chunk flips."""

    def __init__(self, chunk_call=2, word=1000, bit=13):
        super().__init__()
        self.fills, self.chunk_call, self.word, self.bit = 0, chunk_call, word, bit

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.Tensor.fill_:
            self.fills += 1
            if self.fills == self.chunk_call:
                args[0][self.word] ^= 1 << self.bit
        return out


class OutOfMemoryOnThirdChunk(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.allocations = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.empty:
            self.allocations += 1
            if self.allocations == 3:
                raise RuntimeError("out of memory: tried to allocate 8.00 MiB")
        return func(*args, **(kwargs or {}))


def test_healthy_cpu_allocates_fills_and_reads_back():
    result = run_task(Task("environment.memory_alloc", "cpu", "quick", params=SMALL))
    assert result["status"] == "pass", result["message"]
    assert _metric(result, "allocated_bytes") == 24 * 2**20
    assert 0 < _metric(result, "fraction_of_free") < 0.5
    assert _metric(result, "fill_rate") > 0


def test_cpu_cap_keeps_the_host_safe_at_every_level():
    for level in ("quick", "standard", "full"):
        result = run_task(Task("environment.memory_alloc", "cpu", level, params={"cpu_cap_mib": 16, "chunk_mib": 8}))
        assert result["status"] == "pass", result["message"]
        assert _metric(result, "allocated_bytes") <= 16 * 2**20


def test_flipped_bit_is_reported_with_its_byte_offset():
    with FlipBitAfterFill(chunk_call=2, word=1000, bit=13):
        result = run_task(Task("environment.memory_alloc", "cpu", "quick", params=SMALL))
    assert result["status"] == "fail"
    offset = 8 * 2**20 + 1000 * 8  # second 8 MiB chunk, word 1000
    assert f"byte offset {offset}" in result["message"]
    assert "bit 13 flipped" in result["message"]
    assert "1 of" in result["message"]


def test_allocation_failing_despite_reported_free_memory_fails_with_the_numbers():
    with OutOfMemoryOnThirdChunk():
        result = run_task(Task("environment.memory_alloc", "cpu", "quick", params=SMALL))
    assert result["status"] == "fail"
    assert "out of memory" in result["message"]
    assert "chunk 3 of 3" in result["message"] and "after 16.0 MiB" in result["message"]
    assert "reported free" in result["message"]
    assert _metric(result, "allocated_bytes") == 16 * 2**20
