"""correctness.indexing: the healthy comparison is not vacuous; a wrong gathered value or a lost update fails."""

import torch
from torch.overrides import TorchFunctionMode

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.indexing"


class _Wrong(TorchFunctionMode):
    """Post-process results of `funcs` computed in a device dtype (the float64 golden is left alone)."""

    def __init__(self, funcs, corrupt):
        super().__init__()
        self.funcs, self.corrupt = funcs, corrupt

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in self.funcs and out.dtype != torch.float64:
            return self.corrupt(out, args)
        return out


def _run(funcs=(), corrupt=None):
    if corrupt is None:
        return run_task(Task(CHECK, "cpu", "quick"))
    with _Wrong(funcs, corrupt):
        return run_task(Task(CHECK, "cpu", "quick"))


def test_healthy_cpu_float32_accumulation_really_rounds(metric_by_dtype):
    # Pass, dtypes and margin: tests/checks/test_every_check_healthy.py.
    worst = metric_by_dtype(_run(), "worst_error_to_tolerance")
    assert worst["float32"] > 0  # accumulation really rounds: the comparison is not vacuous


def test_gather_that_picks_a_neighbour_fails_exactly():
    def off_by_one(out, args):
        out = out.clone()
        flat = out.reshape(-1)
        flat[7] = flat[8]
        return flat.reshape(out.shape)

    result = _run({torch.gather}, off_by_one)
    assert result["status"] == "fail"
    assert result["message"].startswith("indexing: gather 257x129 dim=0 from 33x129 in float32")


def test_index_add_that_loses_one_update_fails():
    def lost_update(out, args):
        _, dim, index, source = args[:4]
        if dim == 0 and index.numel() > 1000:
            out[index[0]] -= source[0]  # the first contribution to its target is dropped
        return out

    result = _run({torch.Tensor.index_add_}, lost_update)
    assert result["status"] == "fail"
    assert "index_add_ 17x9 dim=0 random index" in result["message"] and "float32" in result["message"]


def test_scatter_add_one_percent_off_in_one_element_fails():
    def off(out, args):
        out = out.clone()
        out.reshape(-1)[2] *= 1.01
        return out

    result = _run({torch.scatter_add}, off)
    assert result["status"] == "fail"
    assert "torch.scatter_add 5x17 dim=1 of transposed" in result["message"] and "element [0, 2]" in result["message"]
