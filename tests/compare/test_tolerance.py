"""What rounding a comparison forgives: more for long sums (another device sums them in another order) and for runs
that computed in less than their tensors' dtype (autocast, TF32 matmuls), and still no more than that."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import acceldoctor
from acceldoctor.compare.dump import load_dump
from acceldoctor.compare.judge import compare_dumps, run_precision
from acceldoctor.compare.reduction import op_reduction_length, tolerance_factor

FLOAT32_EPS = 2.0**-23


def test_reduction_lengths_are_read_from_the_op_and_its_shapes():
    assert op_reduction_length("aten.mm.default", [(16, 4096), (4096, 8)], [(16, 8)]) == 4096
    assert op_reduction_length("aten.addmm.default", [(8,), (16, 4096), (4096, 8)], [(16, 8)]) == 4096
    # a weight gradient sums over the tokens
    assert op_reduction_length("aten.mm.default", [(8, 65536), (65536, 4096)], [(8, 4096)]) == 65536
    # convolution: channels times kernel forward; its backward also sums over batch and space
    assert op_reduction_length("aten.convolution.default", [(2, 64, 8, 8), (32, 64, 3, 3)], [(2, 32, 8, 8)]) == 576
    backward = ([(256, 32, 16, 16), (256, 64, 16, 16), (32, 64, 3, 3)], [(256, 64, 16, 16), (32, 64, 3, 3)])
    assert op_reduction_length("aten.convolution_backward.default", *backward, index=0) == 32 * 9  # grad_input
    assert op_reduction_length("aten.convolution_backward.default", *backward, index=1) == 256 * 16 * 16  # weight
    # a layer norm's weight gradient sums over every token
    assert op_reduction_length("aten.native_layer_norm_backward.default",
                               [(4096, 64), (4096, 64), (4096, 1), (4096, 1), (64,), (64,)],
                               [(4096, 64), (64,), (64,)], index=1) == 4096
    assert op_reduction_length("aten.add.Tensor", [(16, 8), (16, 8)], [(16, 8)]) == 1
    assert op_reduction_length("aten._softmax.default", [(4, 262144)], [(4, 262144)]) == 262144
    # attention: the head dimension and the key length
    assert op_reduction_length("aten._scaled_dot_product_flash_attention_for_cpu.default",
                               [(1, 2, 128, 64), (1, 2, 32768, 64), (1, 2, 32768, 64)], [(1, 2, 128, 64)]) == 32768
    # odd shapes never break a comparison
    for op in ("aten.mm.default", "aten.addmm.default", "aten.convolution_backward.default", "aten.sum.default",
               "aten._scaled_dot_product_efficient_attention.default", "aten.baddbmm.default"):
        assert op_reduction_length(op, [(), (0,), ()], [()], index=5) >= 1
        assert op_reduction_length(op, [], [], index=0) >= 1
    assert tolerance_factor(1000) == 1.0 and tolerance_factor(4 * 16384) == 2.0


class _LongProduct(torch.nn.Module):
    def __init__(self, length: int):
        super().__init__()
        self.proj = torch.nn.Linear(length, 16, bias=False)

    def forward(self, x):
        return self.proj(x)


class _OtherKernel(TorchDispatchMode):
    """aten.mm as another device's kernel would compute it: `sequential` sums the terms one after another in
    float32 (another order than this CPU's BLAS); `tf32` truncates the operands to TF32's 10-bit mantissa first,
    `bfloat16` rounds them to bfloat16 (oneDNN under "medium"); `scale` multiplies the result (a wrong kernel)."""

    def __init__(self, sequential=False, tf32=False, scale=1.0, bfloat16=False):
        super().__init__()
        self.sequential, self.tf32, self.scale, self.bfloat16 = sequential, tf32, scale, bfloat16

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not torch.ops.aten.mm.default:
            return func(*args, **kwargs)
        a, b = args
        if self.tf32:
            a, b = ((t.view(torch.int32) & ~0x1FFF).view(torch.float32) for t in (a, b))
        if self.bfloat16:
            a, b = (t.bfloat16().float() for t in (a, b))
        if self.sequential:
            out = torch.zeros(a.shape[0], b.shape[1])
            for k in range(a.shape[1]):
                out += a[:, k:k + 1] * b[k:k + 1, :]
        else:
            out = a @ b
        return out * self.scale


def _record(model, x, path, level, kernel=None):
    model.zero_grad()
    with kernel or _OtherKernel(), acceldoctor.record(model, path, level=level):
        model(x).square().sum().backward()
    return load_dump(path)


@pytest.mark.parametrize("level", ["module", "op"])
def test_a_long_sum_in_another_order_is_rounding_but_a_wrong_one_is_not(tmp_path, level):
    torch.manual_seed(0)
    length = 131072  # 8x the length the flat tolerance covers
    model, x = _LongProduct(length), torch.randn(16, length)
    plain = _record(model, x, tmp_path / "plain", level)
    other_order = _record(model, x, tmp_path / "sequential", level, _OtherKernel(sequential=True))
    comparison = compare_dumps(plain, other_order)
    product = next(k for k in comparison.keys if k.io == "output" and k.direction == "forward"
                   and (k.op == "aten.mm.default" or (level == "module" and k.module == "proj")))
    # beyond the flat 32 epsilons, within what a sum of this length explains
    assert product.error > 32 * FLOAT32_EPS and product.reduction_length == length, product.verdict()
    assert comparison.equivalent, [k.key + ": " + k.verdict() for k in comparison.divergences[:3]]

    wrong = _record(model, x, tmp_path / "wrong", level, _OtherKernel(scale=1 + 1e-4))
    first = compare_dumps(plain, wrong).first_divergence
    assert first is not None and first.direction == "forward" and "proj" in first.key, first and first.key


@pytest.mark.parametrize("allowed", [True, False])
def test_tf32_matmuls_are_judged_as_tf32_only_where_the_run_allowed_them(tmp_path, allowed):
    torch.manual_seed(0)
    model, x = _LongProduct(256), torch.randn(16, 256)
    plain = _record(model, x, tmp_path / "plain", "op")
    before = torch.get_float32_matmul_precision()
    # "medium" lets a CPU's oneDNN compute float32 products in bfloat16 ("high" changes nothing on a CPU)
    torch.set_float32_matmul_precision("medium" if allowed else "highest")
    try:
        tf32 = _record(model, x, tmp_path / "tf32", "op", _OtherKernel(tf32=True))
    finally:
        torch.set_float32_matmul_precision(before)
    assert run_precision(tf32).matmul == ("bfloat16" if allowed else "float32")
    comparison = compare_dumps(plain, tf32)
    if allowed:  # what the run asked for: its products are TF32's rounding
        assert comparison.equivalent, [k.key + ": " + k.verdict() for k in comparison.divergences[:3]]
    else:  # a float32 run whose products come out in TF32: a kernel that dropped precision
        first = comparison.first_divergence
        assert first is not None and first.op == "aten.mm.default" and first.direction == "forward", first


def test_autocast_inside_the_recording_is_noted_in_the_dump(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with acceldoctor.record(model, tmp_path / "amp"), torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(4, 8)).float().sum().backward()
    dump = load_dump(tmp_path / "amp")
    assert dump.meta["precision"]["autocast"] == {"cpu": "bfloat16"}
    precision = run_precision(dump)
    assert precision.matmul == "bfloat16" and precision.autocast == {"bfloat16"}


def test_recording_survives_the_new_and_the_legacy_precision_apis_mixed(tmp_path):
    import subprocess
    import sys

    # torch raises when the legacy getters are read after a script used the new per-backend API
    script = f"""
import json, torch, acceldoctor
torch.backends.cuda.matmul.fp32_precision = "tf32"
torch.backends.mkldnn.matmul.fp32_precision = "bf16"
model = torch.nn.Linear(4, 2)
with acceldoctor.record(model, {str(tmp_path / "dump")!r}):
    model(torch.randn(3, 4)).sum().backward()
print(json.dumps(json.load(open({str(tmp_path / "dump" / "meta.json")!r}))["precision"]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"matmul": "bfloat16"' in done.stdout  # the CPU's oneDNN setting, read through the new API


@pytest.mark.parametrize("precision", [None, "tf32", [], {"autocast": ["bfloat16"]}, {"autocast": {"cuda": None}},
                                       {"matmul": 3, "convolution": "torch.float16"}])
def test_a_dump_with_odd_precision_notes_is_read_as_far_as_it_makes_sense(precision):
    class Dump:
        meta = {"precision": precision}

    from acceldoctor.compare.precision import RunPrecision

    read = RunPrecision.of(Dump(), "float32")
    assert read.base == "float32" and read.matmul in ("float32", "bfloat16", "float16")


@pytest.mark.parametrize("scale, wrong", [(1.0, False), (1.05, True)])
def test_who_is_wrong_measures_a_lowered_run_against_a_healthy_run_as_low(tmp_path, scale, wrong):
    from acceldoctor.compare.replay import replay_recorded_op

    torch.manual_seed(0)
    model, x = _LongProduct(256), torch.randn(16, 256)
    with acceldoctor.record(model, tmp_path / "plain", level="op", tensors=True):
        model(x)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")  # products in bfloat16 allowed (a CPU's oneDNN)
    try:
        with _OtherKernel(bfloat16=True, scale=scale), acceldoctor.record(model, tmp_path / "medium", level="op",
                                                                           tensors=True):
            model(x)
    finally:
        torch.set_float32_matmul_precision(before)
    plain, medium = load_dump(tmp_path / "plain"), load_dump(tmp_path / "medium")
    key = next(r.key for r in plain.records if r.op == "aten.mm.default" and r.io == "output")
    replay = replay_recorded_op(plain, medium, key)
    # a bfloat16 product is 100x a float32 one's error, and healthy for a run that allowed it
    assert replay["sides"]["b"]["wrong"] is wrong and not replay["sides"]["a"]["wrong"], replay["verdict"]
    assert "contractions in bfloat16" in replay["sides"]["b"]["dtype"]
