"""correctness.cumsum: a wrong prefix or a lost inf fails and is named."""

import torch
from torch.overrides import TorchFunctionMode

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.cumsum"


class _Wrong(TorchFunctionMode):
    """Post-process torch.cumsum results computed in a device dtype (the float64 golden is left alone)."""

    def __init__(self, corrupt):
        super().__init__()
        self.corrupt = corrupt

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is torch.cumsum and args[0].dtype != torch.float64:
            return self.corrupt(out.clone())
        return out


def _run(corrupt):
    with _Wrong(corrupt):
        return run_task(Task(CHECK, "cpu", "quick"))


def test_one_prefix_one_percent_off_after_a_block_boundary_fails():
    def bad_carry(out):
        if out.dim() == 2 and out.shape[-1] == 4097:
            out[0, 2049] *= 1.01  # the first element of the second 2048-wide block
        return out

    result = _run(bad_carry)
    assert result["status"] == "fail"
    message = result["message"]
    assert message.startswith("cumsum: cumsum 3x4097 dim=1 in float32") and "element [0, 2049]" in message


def test_inf_that_is_not_propagated_fails():
    def saturating(out):
        return out.nan_to_num(posinf=float(torch.finfo(out.dtype).max), neginf=float(torch.finfo(out.dtype).min))

    result = _run(saturating)
    assert result["status"] == "fail"
    assert "propagating nan/inf" in result["message"] and "should be" in result["message"]
