import torch
from torch.overrides import TorchFunctionMode

from acceldoctor.runner.worker import Task, run_task

SMALL = {"sizes": [1, 4097, 2**20 + 3], "repeats": 2}


def _metric(result, name):
    return next(m["value"] for m in result["metrics"] if m["name"] == name)


class CorruptCopy(TorchFunctionMode):
    """Flip `bit` of byte `offset` in the destination of every `nth` copy_ of at least `min_bytes` bytes.

    Each round trip makes two such copies: the 1st goes host -> device, the 2nd device -> host.
    """

    def __init__(self, nth, offset=4096, bit=3, min_bytes=4097):
        super().__init__()
        self.nth, self.offset, self.bit, self.min_bytes, self.calls = nth, offset, bit, min_bytes, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.Tensor.copy_ and args[0].numel() >= self.min_bytes:
            self.calls += 1
            if self.calls % 2 == self.nth % 2:
                args[0][self.offset] ^= 1 << self.bit
        return out


class CorruptClone(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.Tensor.clone and out.dtype == torch.uint8 and out.numel() > 10:
            out[10] ^= 0x80
        return out


def test_healthy_cpu_copies_are_exact_and_timed():
    result = run_task(Task("environment.copy_integrity", "cpu", "quick", params=SMALL))
    assert result["status"] == "pass", result["message"]
    assert _metric(result, "wrong_copies") == 0
    assert _metric(result, "h2d_pageable_throughput") > 0 and _metric(result, "d2h_pageable_throughput") > 0
    # every size once, the largest 1 warm-up + 2 timed round trips
    assert _metric(result, "bytes_checked") == 1 + 4097 + 3 * (2**20 + 3)


def test_corrupted_device_to_host_copy_names_direction_offset_and_bit():
    with CorruptCopy(nth=2, offset=4096, bit=3):
        result = run_task(Task("environment.copy_integrity", "cpu", "quick", params=SMALL))
    assert result["status"] == "fail"
    message = result["message"]
    assert message.startswith("device-to-host copy of 4.0 KiB (4097 bytes) from pageable memory")
    assert "byte 4096 (0x1000)" in message and "bit 3 flipped" in message and "1 byte(s) wrong" in message


def test_corrupted_host_to_device_copy_is_told_apart():
    with CorruptCopy(nth=1, offset=4096, bit=0):
        result = run_task(Task("environment.copy_integrity", "cpu", "quick", params=SMALL))
    assert result["status"] == "fail"
    assert result["message"].startswith("host-to-device copy of 4.0 KiB (4097 bytes)")
    assert "byte 4096 (0x1000)" in result["message"] and "bit 0 flipped" in result["message"]
    assert _metric(result, "wrong_copies") == 2  # the 4097-byte and the 1 MiB copies


def test_corrupted_device_to_device_copy_is_reported():
    with CorruptClone():
        result = run_task(Task("environment.copy_integrity", "cpu", "quick", params=SMALL))
    assert result["status"] == "fail"
    assert result["message"].startswith("device-to-device copy of 4.0 KiB")
    assert "byte 10 (0xa)" in result["message"] and "bit 7 flipped" in result["message"]
