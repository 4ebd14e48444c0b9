"""Two runs of a small model, one of them with an injected error: the comparison names where it enters, forward or
backward, and calls healthy runs in different dtypes equivalent."""

import copy

import pytest
import torch
from models import build_cnn, build_mlp, build_transformer_block

from acceldoctor.compare.dump import load_dump
from acceldoctor.compare.judge import compare_dumps
from acceldoctor.compare.one_command import Side, run_side
from acceldoctor.compare.replay import replay_recorded_op


def _compare(tmp_path, builder, side_a, side_b, *, level="module", steps=1, model_b=None, tensors=False):
    model, inputs = builder(0)
    run_side(model, inputs, side_a, tmp_path / "a", steps=steps, level=level, tensors=tensors)
    run_side(model_b or model, inputs, side_b, tmp_path / "b", steps=steps, level=level, tensors=tensors)
    dump_a, dump_b = load_dump(tmp_path / "a"), load_dump(tmp_path / "b")
    return compare_dumps(dump_a, dump_b), dump_a, dump_b


@pytest.mark.parametrize("builder", [build_mlp, build_cnn, build_transformer_block])
@pytest.mark.parametrize("level", ["module", "op"])
def test_healthy_float32_and_bfloat16_runs_are_equivalent(tmp_path, builder, level):
    comparison, _, _ = _compare(tmp_path, builder, Side("a", "cpu", "float32"), Side("b", "cpu", "bfloat16"),
                                level=level, steps=2)
    assert comparison.equivalent, [k.key + ": " + k.verdict() for k in comparison.divergences[:3]]
    assert comparison.keys and not comparison.only_a and not comparison.only_b  # the same calls in either dtype


@pytest.mark.parametrize("level, where", [("module", "attn"), ("op", "softmax")])
def test_a_softmax_computed_in_low_precision_is_found_at_the_softmax(tmp_path, level, where):
    comparison, _, _ = _compare(tmp_path, build_transformer_block, Side("a", "cpu", "float32"),
                                Side("b", "cpu", "float32", "softmax-low-precision"), level=level)
    first = comparison.first_divergence
    assert first is not None and where in first.key and first.direction == "forward", first and first.key


@pytest.mark.parametrize("level", ["module", "op"])
def test_a_layer_norm_with_the_wrong_epsilon_is_found_at_the_norm(tmp_path, level):
    comparison, _, _ = _compare(tmp_path, build_transformer_block, Side("a", "cpu", "float32"),
                                Side("b", "cpu", "float32", "layernorm-eps"), level=level)
    first = comparison.first_divergence
    assert first is not None and first.module in ("ln1", "ln2") and first.direction == "forward", first and first.key


def test_a_bit_flip_in_a_matmul_is_found_at_that_layer(tmp_path):
    comparison, _, _ = _compare(tmp_path, build_mlp, Side("a", "cpu", "float32"),
                                Side("b", "cpu", "float32", "bitflip:1"), level="op")
    first = comparison.first_divergence
    # the fault flips a bit after the product, in ops only run B makes: the error is named where it enters, as the
    # next layer's input, with the first layer's extra calls
    assert first is not None and first.direction == "forward" and first.key.startswith("blocks.0."), first and first.key
    assert first.between and all(call.startswith("blocks.0.fc1/") for call in first.between), first.between


class _ScaledGradient(torch.autograd.Function):
    """The identity forward; backward, the gradient times `scale` (1.01: a kernel bug only training sees)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


class _GradientTap(torch.nn.Module):
    def __init__(self, inner, scale):
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return _ScaledGradient.apply(self.inner(x), self.scale)


def _with_tap(model, scale):
    """`model` with its first linear layer wrapped in a gradient tap (the same module names either way)."""
    tapped = copy.deepcopy(model)
    name = next(n for n, m in tapped.named_modules() if isinstance(m, torch.nn.Linear))
    parent_name, _, child = name.rpartition(".")
    parent = tapped.get_submodule(parent_name) if parent_name else tapped
    setattr(parent, child, _GradientTap(getattr(parent, child), scale))
    return tapped, name


@pytest.mark.parametrize("level", ["module", "op"])
def test_an_error_only_in_the_backward_pass_is_found_there(tmp_path, level):
    model, inputs = build_mlp(0)
    healthy, name = _with_tap(model, 1.0)
    broken, _ = _with_tap(model, 1.01)
    comparison, _, _ = _compare(tmp_path, lambda seed: (healthy, inputs), Side("a", "cpu", "float32"),
                                Side("b", "cpu", "float32"), model_b=broken, level=level)
    first = comparison.first_divergence
    # nothing parts before the backward pass (after it, the optimizer's updates inherit the error)
    assert comparison.divergences and comparison.divergences[0].direction == "backward"
    assert first is not None and first.direction == "backward" and first.key.startswith(name), first and first.key


def test_the_first_nan_is_named_where_finite_inputs_turned_into_nan(tmp_path):
    model, inputs = build_transformer_block(0)
    big = tuple(x * 1000 if x.is_floating_point() else x for x in inputs)  # logits past the fault's limit
    run_side(model, big, Side("b", "cpu", "float32", "softmax-nan"), tmp_path / "b", steps=1, level="op")
    from acceldoctor.compare.judge import first_nonfinite

    found = first_nonfinite(load_dump(tmp_path / "b"))
    # the NaN is made inside the attention module, where the softmax is, and not before
    assert found is not None and found["key"].startswith("attn/") and found["direction"] == "forward", found


def test_who_is_wrong_is_decided_by_re_running_the_op_in_float64(tmp_path):
    comparison, dump_a, dump_b = _compare(tmp_path, build_transformer_block, Side("a", "cpu", "float32"),
                                          Side("b", "cpu", "float32", "softmax-low-precision"), level="op",
                                          tensors=True)
    replay = replay_recorded_op(dump_a, dump_b, comparison.first_divergence.key)
    assert replay is not None, "the op-level dump with tensors must be replayable"
    assert replay["sides"]["b"]["wrong"] and not replay["sides"]["a"]["wrong"], replay
    assert replay["verdict"].startswith("run B is wrong")


class _DropoutMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.drop, self.fc2 = torch.nn.Linear(16, 32), torch.nn.Dropout(0.5), torch.nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


@pytest.mark.parametrize("level", ["module", "op"])
def test_a_model_with_dropout_is_equivalent_to_itself(tmp_path, level):
    torch.manual_seed(0)
    model, inputs = _DropoutMLP(), (torch.randn(8, 16),)
    comparison, _, _ = _compare(tmp_path, lambda seed: (model, inputs), Side("a", "cpu", "float32"),
                                Side("b", "cpu", "float32"), level=level, steps=2)
    assert comparison.equivalent, [k.verdict() for k in comparison.divergences[:2]]


@pytest.mark.parametrize("tensors", [False, True])
def test_float32_against_float64_is_equivalent(tmp_path, tensors):
    comparison, _, _ = _compare(tmp_path, build_transformer_block, Side("a", "cpu", "float32"),
                                Side("b", "cpu", "float64"), level="op", tensors=tensors)
    assert comparison.equivalent, [k.key + ": " + k.verdict() for k in comparison.divergences[:2]]


def test_an_op_called_with_other_arguments_is_named_without_re_running_it(tmp_path):
    comparison, dump_a, dump_b = _compare(tmp_path, build_transformer_block, Side("a", "cpu", "float32"),
                                          Side("b", "cpu", "float32", "layernorm-eps"), level="op", tensors=True)
    replay = replay_recorded_op(dump_a, dump_b, comparison.first_divergence.key)
    assert replay is not None and "different arguments" in replay["verdict"] and "0.01" in replay["verdict"]


class _CausalScores(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.query = torch.nn.Linear(8, 8)

    def forward(self, x):
        scores = self.query(x) @ x.transpose(-1, -2)
        mask = torch.ones(scores.shape[-1], scores.shape[-1], dtype=torch.bool).triu(1)
        return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ x


def test_a_causal_mask_is_not_taken_for_a_nan(tmp_path):
    from acceldoctor.compare.judge import first_nonfinite

    run_side(_CausalScores(), (torch.randn(2, 6, 8),), Side("a", "cpu", "float32"), tmp_path / "a", steps=1,
             level="op")
    assert first_nonfinite(load_dump(tmp_path / "a")) is None  # -inf from the mask is on purpose


def _train_with_a_corrupted_weight(tmp_path, model, inputs, weight, scale):
    """Two recordings of two SGD steps; in run B the optimizer step multiplies `weight` by `scale`."""
    import acceldoctor

    for label, factor in (("a", 1.0), ("b", scale)):
        trained = copy.deepcopy(model)
        optimizer = torch.optim.SGD(trained.parameters(), lr=0.01)
        with acceldoctor.record(trained, tmp_path / label):
            for step in range(2):
                optimizer.zero_grad()
                trained(*inputs).square().mean().backward()
                optimizer.step()
                if step == 0:
                    with torch.no_grad():
                        trained.get_parameter(weight).mul_(factor)
    return compare_dumps(load_dump(tmp_path / "a"), load_dump(tmp_path / "b"))


# 1e-3: far beyond rounding; 2e-5: a few times float32's tolerance, found through the layer it makes diverge
@pytest.mark.parametrize("scale", [1 + 1e-3, 1 + 2e-5])
def test_weights_changed_between_steps_are_named_not_the_layer_using_them(tmp_path, scale):
    model, inputs = build_mlp(0)
    comparison = _train_with_a_corrupted_weight(tmp_path, model, inputs, "blocks.1.fc1.weight", scale)
    first = comparison.first_divergence
    # the weight that changed between the steps, not blocks.1.fc1's output in step 1 as if that layer computed wrong
    assert first is not None and first.key == "blocks.1.fc1.weight#1/forward/parameter0", first and first.key
    assert "optimizer step" in first.verdict()
    assert not [k for k in comparison.sources() if k.module == "blocks.1.fc1" and k.io == "output"]


class _TiedLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.mid, self.dec = (torch.nn.Linear(16, 16) for _ in range(3))
        self.dec.weight = self.enc.weight  # named_parameters() lists it once, as enc.weight

    def forward(self, x):
        return self.enc(torch.relu(self.dec(self.mid(x))))


def test_a_tied_weight_counts_for_every_layer_that_holds_it(tmp_path):
    torch.manual_seed(0)
    comparison = _train_with_a_corrupted_weight(tmp_path, _TiedLayers(), (torch.randn(8, 16),), "enc.weight", 1.001)
    assert comparison.first_divergence.key == "enc.weight#1/forward/parameter0"
    assert not [k for k in comparison.sources() if k.module == "dec"]  # dec computes from the same weight


class _ZeroBiasAttention(torch.nn.Module):
    """BERT-style attention with zero-initialised biases: the key's bias gets gradients that are rounding noise."""

    def __init__(self, dim=32):
        super().__init__()
        self.q, self.k, self.v = (torch.nn.Linear(dim, dim) for _ in range(3))
        for layer in (self.q, self.k, self.v):
            torch.nn.init.zeros_(layer.bias)

    def forward(self, x):
        return torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2) / 8, -1) @ self.v(x)


def test_a_zero_bias_holding_rounding_noise_is_not_a_divergence(tmp_path):
    torch.manual_seed(0)
    model, inputs = _ZeroBiasAttention(), (torch.randn(4, 16, 32),)
    comparison, _, _ = _compare(tmp_path, lambda seed: (model, inputs), Side("a", "cpu", "float32"),
                                Side("b", "cpu", "float16"), steps=2)
    assert comparison.equivalent, [k.key + ": " + k.verdict() for k in comparison.divergences[:3]]


def test_weights_offloaded_between_calls_can_be_recorded(tmp_path):
    import acceldoctor

    # accelerate-style offloading: the layer's weights live on "meta" until a pre-hook loads them
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    stash = {name: p.detach().clone() for name, p in model[1].named_parameters()}

    def load(module, args):
        for name, value in stash.items():
            setattr(module, name, torch.nn.Parameter(value.clone()))

    def drop(module, args, output):
        for name, value in stash.items():
            setattr(module, name, torch.nn.Parameter(torch.empty_like(value, device="meta")))

    drop(model[1], None, None)
    model[1].register_forward_pre_hook(load)
    model[1].register_forward_hook(drop)
    with acceldoctor.record(model, tmp_path / "offloaded"):
        model(torch.randn(3, 4)).sum().backward()
    recorded = {r.module for r in load_dump(tmp_path / "offloaded").records if r.io == "parameter"}
    assert recorded == {"0.weight", "0.bias"}
