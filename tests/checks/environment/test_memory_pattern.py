import torch
from torch.overrides import TorchFunctionMode

from acceldoctor.runner.worker import Task, run_task

SMALL = {"size_mib": 4, "chunk_mib": 1, "walking_shifts": 32, "random_passes": 2}


def _metric(result, name):
    return next(m["value"] for m in result["metrics"] if m["name"] == name)


class StuckBit(TorchFunctionMode):
    """A cell whose bit `bit` at byte `byte_offset` of the tested buffer always reads 1 (stuck-at-one)."""

    def __init__(self, byte_offset, bit):
        super().__init__()
        self.byte_offset, self.bit = byte_offset, bit
        self.buffer_ptr = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.empty and self.buffer_ptr is None and out.numel() * out.element_size() >= 4 * 2**20:
            self.buffer_ptr = out.data_ptr()  # the tested buffer is the first big allocation
        if func is torch.Tensor.copy_ and self.buffer_ptr is not None:
            dest = args[0]
            start = dest.data_ptr() - self.buffer_ptr
            if start <= self.byte_offset < start + dest.numel() * dest.element_size():
                raw = dest.view(torch.uint8)
                raw[self.byte_offset - start] |= 1 << self.bit
        return out


def test_healthy_cpu_memory_holds_every_pattern():
    result = run_task(Task("environment.memory_pattern", "cpu", "quick", params=SMALL))
    assert result["status"] == "pass", result["message"]
    assert _metric(result, "passes") == 2 + 64 + 2
    assert _metric(result, "corrupted_words") == 0
    assert _metric(result, "buffer_bytes") == 4 * 2**20


def test_stuck_bit_is_reported_with_offset_expected_actual_and_bit():
    byte_offset = 3 * 2**20 + 4 * 1234 + 2  # third byte of word 1234 in the fourth 1 MiB chunk
    with StuckBit(byte_offset, bit=1):
        result = run_task(Task("environment.memory_pattern", "cpu", "quick", params=SMALL))
    assert result["status"] == "fail"
    message = result["message"]
    word_offset = byte_offset - 2
    assert f"byte offset {word_offset} (0x{word_offset:x})" in message
    # bit 1 of byte 2 of a little-endian 32-bit word is bit 17 of the word
    assert "bit 17 flipped" in message
    assert "expected 0x" in message and "read 0x" in message
    # stuck-at-one shows whenever the pattern wants a 0 there: most passes, but not walking ones elsewhere
    assert 0 < _metric(result, "corrupted_words") < 70
