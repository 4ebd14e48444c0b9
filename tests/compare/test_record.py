"""acceldoctor.record: what a user sees in a dump after recording a model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import acceldoctor
from acceldoctor.compare import record as record_module
from acceldoctor.compare import stats
from acceldoctor.compare.callargs import decode_call, resolve_op
from acceldoctor.compare.dump import load_dump
from acceldoctor.compare.stats import tensor_stats
from acceldoctor.compare.writer import DumpWriter

sys.path.insert(0, str(Path(__file__).parent))
from models import BUILDERS, build_cnn, build_mlp, build_transformer_block, to, train_step  # noqa: E402

LEVELS = ("module", "op")


def record_steps(model, inputs, path, steps: int = 1, **options):
    with acceldoctor.record(model, path, **options):
        for _ in range(steps):
            train_step(model, inputs)
    return load_dump(path)


def keys(dump) -> list[str]:
    return [r.key for r in dump.records]


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    integer = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.contiguous().view(integer),
                                                                     b.contiguous().view(integer))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_two_recordings_of_the_same_model_have_the_same_keys(tmp_path, name, level):
    first = record_steps(*BUILDERS[name](0), tmp_path / "a", level=level)
    second = record_steps(*BUILDERS[name](0), tmp_path / "b", level=level)
    assert keys(first) == keys(second)
    assert len(set(keys(first))) == len(first.records), "keys are unique within a dump"
    # Same seed, same CPU: the same bits.
    assert [r.stats["checksum"] for r in first.records] == [r.stats["checksum"] for r in second.records]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_float32_and_bfloat16_runs_have_the_same_keys(tmp_path, name, level):
    full = record_steps(*BUILDERS[name](0), tmp_path / "fp32", level=level)
    half = record_steps(*to(*BUILDERS[name](0), dtype=torch.bfloat16), tmp_path / "bf16", level=level)
    assert keys(full) == keys(half)
    assert {r.dtype for r in full.records} == {"float32"}
    assert {r.dtype for r in half.records} == {"bfloat16"}
    assert full.meta["device"] == half.meta["device"] == "cpu"


def test_module_level_keys_name_modules_forward_and_backward(tmp_path):
    dump = record_steps(*build_transformer_block(0), tmp_path / "dump", level="module")
    found = set(keys(dump))
    for key in ("(model)#0/forward/input0", "(model)#0/forward/output0", "ln1#0/forward/output0",
                "attn.qkv#0/forward/output0", "mlp.fc1#0/forward/input0", "mlp.act#0/forward/output0",
                "(model)#0/backward/grad_output0", "attn#0/backward/grad_output0", "mlp.fc2#0/backward/grad_input0"):
        assert key in found, key
    assert {r.direction for r in dump.records} == {"forward", "backward"}
    assert {r.op for r in dump.records} == {None}
    assert dump.meta["level"] == "module" and dump.meta["model"] == "TransformerBlock" and dump.meta["steps"] == 1
    # Backward comes after forward, and the gradient of the output is the first gradient recorded.
    first_backward = next(r for r in dump.records if r.direction == "backward")
    assert first_backward.key == "(model)#0/backward/grad_output0"
    assert all(r.direction == "forward" for r in dump.records[: first_backward.seq])


def test_module_level_gradient_is_the_gradient(tmp_path):
    model, inputs = build_mlp(0)
    outputs = []
    model.head.register_forward_hook(lambda module, args, output: output.retain_grad() or outputs.append(output))
    dump = record_steps(model, inputs, tmp_path / "dump", level="module", tensors=True)
    recorded = dump.tensor(dump.by_key()["head#0/backward/grad_output0"])
    assert same_bits(recorded, outputs[0].grad)


def test_op_level_keys_name_the_module_and_the_op(tmp_path):
    dump = record_steps(*build_transformer_block(0), tmp_path / "dump", level="op")
    found = set(keys(dump))
    for key in ("attn/aten._softmax.default#0/forward/output0", "attn/aten._softmax.default#0/forward/input0",
                "ln1/aten.native_layer_norm.default#0/forward/output0", "attn.qkv/aten.addmm.default#0/forward/output0",
                "mlp.act/aten.gelu.default#0/forward/output0",
                # backward ops are attributed to the module whose forward made them
                "attn/aten._softmax_backward_data.default#0/backward/output0",
                "mlp.act/aten.gelu_backward.default#0/backward/output0",
                "ln1/aten.native_layer_norm_backward.default#0/backward/output1",  # output0 (input grad): None
                # the loss, outside the model
                "(outside)/aten.pow.Tensor_Scalar#0/forward/output0"):
        assert key in found, key
    assert not any(r.op in ("aten.view.default", "aten.t.default", "aten.detach.default") for r in dump.records), \
        "views carry no new values and are not recorded"
    assert not any(r.module.startswith("(backward)/") for r in dump.records), "every backward op is attributed"


class FillsABuffer(nn.Module):
    def forward(self, x):
        buffer = torch.empty_like(x)  # uninitialised memory: different garbage in every run
        buffer.copy_(x * 2)
        return buffer + 1


def test_op_level_leaves_out_uninitialised_memory(tmp_path):
    model = FillsABuffer()
    with acceldoctor.record(model, tmp_path / "dump", level="op"), torch.no_grad():
        model(torch.randn(3, generator=torch.Generator().manual_seed(0)))
    found = keys(load_dump(tmp_path / "dump"))
    assert {"(model)/aten.copy_.default#0/forward/input1", "(model)/aten.copy_.default#0/forward/output0"} <= set(found)
    assert not any("empty" in key or key.endswith("copy_.default#0/forward/input0") for key in found)


def test_op_level_attributes_backward_ops_to_modules_in_a_cnn(tmp_path):
    dump = record_steps(*build_cnn(0), tmp_path / "dump", level="op")
    backward = {(r.module, r.op) for r in dump.records if r.direction == "backward"}
    assert ("block.conv2", "aten.convolution_backward.default") in backward
    assert ("block.bn1", "aten.native_batch_norm_backward.default") in backward
    assert ("pool", "aten.max_pool2d_with_indices_backward.default") in backward


@pytest.mark.parametrize("level", LEVELS)
def test_inference_without_gradients_records_the_forward(tmp_path, level):
    for name, context in (("no_grad", torch.no_grad), ("inference_mode", torch.inference_mode)):
        model, inputs = build_transformer_block(0)
        with acceldoctor.record(model, tmp_path / name, level=level, tensors=True), context():
            output = model(*inputs)
        dump = load_dump(tmp_path / name)
        assert {r.direction for r in dump.records} == {"forward"} and dump.meta["steps"] == 1
        last = dump.records[-1] if level == "op" else dump.by_key()["(model)#0/forward/output0"]
        assert same_bits(dump.tensor(last), output)


def test_module_and_op_level_at_once(tmp_path):
    model, inputs = build_mlp(0)
    with acceldoctor.record(model, tmp_path / "ops", level="op"), acceldoctor.record(model, tmp_path / "modules"):
        train_step(model, inputs)
    alone = record_steps(*build_mlp(0), tmp_path / "alone", level="op")
    assert keys(load_dump(tmp_path / "ops")) == keys(alone), "the module level's statistics are not recorded as ops"
    assert keys(load_dump(tmp_path / "modules")) == keys(record_steps(*build_mlp(0), tmp_path / "m"))


def test_a_cnn_with_in_place_relu_and_residual_records_at_module_level(tmp_path):
    # register_full_backward_hook would make this model fail ("a view ... is being modified inplace").
    model, inputs = build_cnn(0)
    dump = record_steps(model, inputs, tmp_path / "dump", level="module")
    found = set(keys(dump))
    assert "block.relu#0/forward/output0" in found and "block.relu#1/forward/output0" in found
    assert "block.conv1#0/backward/grad_output0" in found


def test_a_training_loop_records_each_step(tmp_path):
    model, inputs = build_mlp(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for level in LEVELS:
        with acceldoctor.record(model, tmp_path / level, level=level):
            for _ in range(2):
                optimizer.zero_grad()
                train_step(model, inputs)
                optimizer.step()
        dump = load_dump(tmp_path / level)
        assert dump.meta["steps"] == 2
        assert {r.step for r in dump.records} == {0, 1}
        steps = [r.step for r in dump.records]
        assert steps == sorted(steps), "records are in execution order"
        if level == "module":
            assert dump.by_key()["blocks.0.fc1#1/forward/output0"].step == 1
            assert dump.by_key()["blocks.0.fc1#1/backward/grad_output0"].step == 1
            # the weights changed between the steps, so did the output
            first, second = (dump.by_key()[f"blocks.0.fc1#{c}/forward/output0"] for c in (0, 1))
            assert first.stats["checksum"] != second.stats["checksum"]
        else:
            assert any(r.module == "(outside)" and r.step == 1 and "foreach" in r.op or r.op.startswith("aten.add")
                       for r in dump.records if r.module == "(outside)"), "the optimizer's update is recorded"


class Passthrough(nn.Module):
    def forward(self, x):
        return x * 1.0


def test_statistics_match_torch_on_nan_and_inf(tmp_path):
    x = torch.randn(64, 33, generator=torch.Generator().manual_seed(3))
    x[0, 0], x[5, 7], x[9, 1], x[9, 2] = math.nan, math.inf, -math.inf, math.inf
    finite = torch.randn(1000, generator=torch.Generator().manual_seed(4)) * 3 + 1
    model = Passthrough()
    with acceldoctor.record(model, tmp_path / "dump"):
        model(x)
        model(finite)
    records = load_dump(tmp_path / "dump").by_key()
    special = records["(model)#0/forward/input0"].stats
    assert math.isnan(special["min"]) == math.isnan(x.min().item())
    assert math.isnan(special["max"]) and math.isnan(special["mean"]) and math.isnan(special["l2"])
    assert special["nan"] == int(torch.isnan(x).sum()) == 1
    assert special["inf"] == int(torch.isinf(x).sum()) == 3
    infinite = torch.where(torch.isnan(x), 0.0, x)
    stats = tensor_stats(infinite)
    assert (stats["min"], stats["max"], stats["nan"], stats["inf"]) == (-math.inf, math.inf, 0, 3)
    assert math.isnan(stats["mean"]) and math.isnan(infinite.mean().item())  # inf + -inf
    assert stats["l2"] == math.inf == torch.linalg.vector_norm(infinite).item()
    plain = records["(model)#1/forward/input0"].stats
    assert plain["min"] == finite.min().item() and plain["max"] == finite.max().item()
    assert plain["mean"] == pytest.approx(finite.mean().item(), rel=1e-5)
    assert plain["l2"] == pytest.approx(torch.linalg.vector_norm(finite).item(), rel=1e-5)
    assert (plain["nan"], plain["inf"]) == (0, 0)


def test_checksum_tells_bit_identical_from_different():
    x = torch.randn(4, 8, 16, generator=torch.Generator().manual_seed(0))
    same = tensor_stats(x.clone())["checksum"]
    assert tensor_stats(x)["checksum"] == same
    assert tensor_stats(x.permute(2, 0, 1).contiguous().permute(1, 2, 0))["checksum"] == same, "layout is not content"
    flipped = x.clone()
    flipped.view(-1).view(torch.int32)[100] ^= 1  # one bit of one element
    assert tensor_stats(flipped)["checksum"] != same
    swapped = x.clone()
    swapped[0, 0, 0], swapped[0, 0, 1] = x[0, 0, 1], x[0, 0, 0]
    assert tensor_stats(swapped)["checksum"] != same
    assert tensor_stats(torch.tensor(0.0))["checksum"] != tensor_stats(torch.tensor(-0.0))["checksum"]
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        y = x.to(dtype)
        changed = y.clone()
        changed[1, 2, 3] = -changed[1, 2, 3]
        assert tensor_stats(y)["checksum"] != tensor_stats(changed)["checksum"], dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_the_accelerator_path_computes_the_same_statistics(dtype):
    """No accelerator here: run the accelerator's statistics (stacked, counted unconditionally, checksum by products
    and a sum) on the CPU and hold them to the CPU path's — the checksum bit for bit, across the weight period too."""
    generator = torch.Generator().manual_seed(1)
    for x in (torch.randn(4, 32, 64, generator=generator).to(dtype),
              torch.randn(64, 48, generator=generator).to(dtype).t(),  # not contiguous
              torch.randn(stats._WEIGHT_PERIOD + 77, generator=generator).to(dtype)):
        x[(0,) * x.dim()] = math.nan
        on_cpu = stats.materialize(stats.queue_stats(x))
        on_device = stats.materialize(stats.queue_device_stats(x))
        assert on_device["checksum"] == on_cpu["checksum"]
        assert (on_device["nan"], on_device["inf"]) == (on_cpu["nan"], on_cpu["inf"]) == (1, 0)
        finite = torch.where(torch.isnan(x), 0.0, x)
        on_cpu, on_device = (stats.materialize(f(finite)) for f in (stats.queue_stats, stats.queue_device_stats))
        assert on_device["checksum"] == on_cpu["checksum"]
        assert (on_device["min"], on_device["max"]) == (on_cpu["min"], on_cpu["max"])
        # Sums of millions of float32 terms in different orders: equal to rounding, not to the bit.
        for name in ("mean", "l2"):
            assert on_device[name] == pytest.approx(on_cpu[name], rel=1e-4, abs=1e-6), name


def test_recording_with_the_accelerator_path_and_the_writer_thread(tmp_path, monkeypatch):
    """What a model on an accelerator gets: device statistics and a background writer. Same dump, but for the
    last bits of the norms."""
    direct = record_steps(*build_transformer_block(0), tmp_path / "direct", tensors=True)
    monkeypatch.setattr(record_module, "queue_stats", stats.queue_device_stats)
    monkeypatch.setattr(record_module, "DumpWriter", lambda path, background: DumpWriter(path, background=True))
    threaded = record_steps(*build_transformer_block(0), tmp_path / "threaded", tensors=True)
    assert keys(threaded) == keys(direct)
    for a, b in zip(direct.records, threaded.records, strict=True):
        assert a.stats["checksum"] == b.stats["checksum"] and a.tensor == b.tensor
        assert b.stats["l2"] == pytest.approx(a.stats["l2"], rel=1e-5)
        if a.io != "parameter":  # parameters are stored only where `select` names them
            assert same_bits(direct.tensor(a), threaded.tensor(b))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_stored_tensors_round_trip_bit_exactly(tmp_path, dtype):
    model, inputs = to(*build_transformer_block(0), dtype=dtype)
    inputs[0].view(-1)[:3] = torch.tensor([math.nan, math.inf, -0.0], dtype=dtype)  # odd bits survive too
    with acceldoctor.record(model, tmp_path / "dump", tensors=True):
        output = model(*inputs)
    dump = load_dump(tmp_path / "dump")
    records = dump.by_key()
    assert same_bits(dump.tensor(records["(model)#0/forward/input0"]), inputs[0])
    assert same_bits(dump.tensor(records["(model)#0/forward/output0"]), output.detach())
    assert all(dump.tensor(r) is not None for r in dump.records if r.io != "parameter")
    # every weight at every step would dwarf the rest: stored only where `select` names them
    assert all(r.tensor is None for r in dump.records if r.io == "parameter")
    assert dump.meta["tensors"] is True


def test_select_and_max_tensor_bytes_limit_what_is_stored(tmp_path):
    model, inputs = build_transformer_block(0)
    dump = record_steps(model, inputs, tmp_path / "select", tensors=True, select=["mlp.fc1#*", "*/grad_output0"])
    stored = {r.key for r in dump.records if r.tensor is not None}
    assert stored == {r.key for r in dump.records if r.key.startswith("mlp.fc1#") or r.key.endswith("/grad_output0")}
    assert "mlp.fc1#0/forward/output0" in stored and "attn#0/forward/output0" not in stored
    assert all(dump.tensor(r) is None for r in dump.records if r.key not in stored)
    assert len(dump.records) == len(record_steps(*build_transformer_block(0), tmp_path / "all").records), \
        "statistics are recorded for every key either way"

    limit = 4 * 32 * 64 * 4  # the block's activations fit, the MLP's hidden ones do not
    small = record_steps(*build_transformer_block(0), tmp_path / "small", tensors=True, max_tensor_bytes=limit)
    for r in small.records:
        # parameters are stored only where `select` names them
        assert (r.tensor is not None) == (math.prod(r.shape) * 4 <= limit and r.io != "parameter"), r.key
    named = record_steps(*build_transformer_block(0), tmp_path / "weights", tensors=True, select="mlp.fc1.weight#*")
    assert {r.key for r in named.records if r.tensor is not None} == {"mlp.fc1.weight#0/forward/parameter0"}


@pytest.mark.parametrize("build", [build_transformer_block, build_cnn, build_mlp])
def test_op_calls_replay_from_their_recorded_arguments(tmp_path, build):
    dump = record_steps(*build(0), tmp_path / "dump", level="op", tensors=True)
    outputs = [r for r in dump.records if r.io == "output"]
    assert outputs
    for output in outputs:
        call_args = dump.call_args_of(output)
        assert call_args is not None and call_args["replayable"], output.key
        inputs = {r.index: dump.tensor(r) for r in dump.inputs_of(output)}
        args, kwargs = decode_call(call_args, inputs)
        result = resolve_op(output.op)(*args, **kwargs)
        result = result[output.index] if isinstance(result, (tuple, list)) else result
        expected = dump.tensor(output)
        assert result.shape == expected.shape and result.dtype == expected.dtype, output.key
        torch.testing.assert_close(result, expected, rtol=1e-6, atol=1e-7, msg=output.key)


def test_call_args_replay_in_float64(tmp_path):
    dump = record_steps(*build_transformer_block(0), tmp_path / "dump", level="op", tensors=True)
    softmax = dump.by_key()["attn/aten._softmax.default#0/forward/output0"]
    assert dump.call_args_of(softmax)["args"][1:] == [-1, False]
    inputs = {r.index: dump.tensor(r).double() for r in dump.inputs_of(softmax)}
    golden = resolve_op(softmax.op)(*decode_call(dump.call_args_of(softmax), inputs)[0])
    assert golden.dtype == torch.float64
    torch.testing.assert_close(golden.float(), dump.tensor(softmax), rtol=1e-5, atol=1e-6)


def test_an_exception_inside_the_block_leaves_a_valid_dump(tmp_path):
    model, inputs = build_mlp(0)
    with pytest.raises(RuntimeError, match="boom"), acceldoctor.record(model, tmp_path / "dump", tensors=True):
        train_step(model, inputs)
        raise RuntimeError("boom")
    dump = load_dump(tmp_path / "dump")
    assert dump.meta["complete"] is True and dump.meta["error"] == "RuntimeError: boom"
    assert dump.meta["records"] == len(dump.records) > 0
    assert all(dump.tensor(r) is not None for r in dump.records if r.io != "parameter")
    # the hooks are gone: running the model again records nothing and changes nothing
    train_step(model, inputs)
    assert len(load_dump(tmp_path / "dump").records) == len(dump.records)


def test_an_exception_inside_the_model_at_op_level(tmp_path):
    class Failing(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(4, 4)

        def forward(self, x):
            return self.inner(x) @ torch.ones(5, 5)  # shape error inside the model's forward

    model = Failing()
    with pytest.raises(RuntimeError), acceldoctor.record(model, tmp_path / "dump", level="op"):
        model(torch.randn(2, 4))
    dump = load_dump(tmp_path / "dump")
    assert "inner/aten.addmm.default#0/forward/output0" in dump.by_key()
    assert torch.autograd.backward.__module__ == "torch.autograd", "backward is unpatched after recording"


def test_meta_describes_the_run(tmp_path):
    dump = record_steps(*build_mlp(0), tmp_path / "dump", steps=3)
    meta = json.loads((tmp_path / "dump" / "meta.json").read_text())
    assert meta == dump.meta
    assert meta["schema"] == "acceldoctor.dump/1"
    assert (meta["level"], meta["tensors"], meta["device"], meta["model"], meta["steps"]) == (
        "module", False, "cpu", "MLP", 3)
    assert meta["torch"] == torch.__version__ and meta["acceldoctor"] == acceldoctor.__version__
    assert meta["created_at"] and meta["complete"] is True and meta["error"] is None


def test_bad_arguments_are_refused(tmp_path):
    model, _ = build_mlp(0)
    with pytest.raises(ValueError, match="level"):
        acceldoctor.record(model, tmp_path / "x", level="layer")
    with pytest.raises(TypeError):
        acceldoctor.record(lambda x: x, tmp_path / "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError), acceldoctor.record(model, tmp_path / "file"):
        pass


def test_import_acceldoctor_stays_light():
    code = "import sys, acceldoctor; assert 'torch' not in sys.modules; print(callable(acceldoctor.record))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_random_projections_estimate_the_size_of_a_difference_statistics_cannot_see():
    from acceldoctor.compare.metrics import error_from_stats

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(4096, generator=generator)
    b = a * (1 + 1e-3 * torch.randn(4096, generator=generator))  # independent rounding-like errors
    true = float((a - b).norm() / a.norm())
    estimate = error_from_stats(tensor_stats(a), tensor_stats(b), a.numel())
    assert true / 10 < estimate < true * 10
    one = a.clone()
    one[1234] += 0.5  # one changed element
    assert error_from_stats(tensor_stats(a), tensor_stats(one), a.numel()) > 0.4 / float(a.norm())
