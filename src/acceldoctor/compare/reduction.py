"""Contractions and reductions: how many terms a call sums into each element it produces, and how much wider that
makes its tolerance; and which calls are the contractions that TF32-like switches lower (precision.py).

Rounding error of a sum grows with its length: about as its square root for the blocked and pairwise sums kernels
use, and for a plain sequential float32 sum too in the probabilistic bound (Higham & Mary, 2019). Two devices that
sum a long reduction in different orders therefore differ by more than two that sum a short one: a float32 product
with 131,072 terms summed sequentially is about 46 float32 epsilons from the exact one, where the BLAS on this CPU
is 4. The flat tolerance (judge.TOLERANCE_EPS) covers reductions up to REFERENCE_LENGTH terms; a longer one gets
sqrt(length / REFERENCE_LENGTH) times more.

Lengths are read from shapes only, so they work from statistics dumps: at op level from the op and its arguments'
shapes; at module level from the module's parameters (fan-in forward, fan-in or fan-out backward), recorded in the
dump's meta `contractions` when recording starts (a module's own outputs do not tell a Linear's in_features), and
from its shapes. They are estimates: a softmax is taken to sum over its last dimension, an op this module does not
know over what its shapes suggest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

# A sequential float32 sum of this many terms is about 16 epsilons from the exact sum: half the flat tolerance.
REFERENCE_LENGTH = 16384

# aten ops that contract their first (or, for the add- forms, their second) argument's last dimension.
_CONTRACT_FIRST = frozenset({"mm", "bmm", "matmul", "linear", "mv", "dot", "vdot", "_scaled_mm", "inner"})
_CONTRACT_SECOND = frozenset({"addmm", "baddbmm", "addmv", "addbmm", "_addmm_activation"})
_ATTENTION = ("scaled_dot_product", "flash_attention", "efficient_attention")
# Reductions over (by default) the last dimension whose result keeps the input's shape.
_LAST_DIMENSION = ("softmax", "norm", "cumsum", "cumprod", "logsumexp")

Shape = Sequence[int]


def tolerance_factor(length: int) -> float:
    """How many times the flat tolerance a reduction of `length` terms is given."""
    return max(1.0, math.sqrt(max(length, 1) / REFERENCE_LENGTH))


def _name(op: str) -> str:
    """`mm` of `aten.mm.default`."""
    parts = op.split(".")
    return parts[1] if len(parts) >= 2 and parts[0] == "aten" else op


def contraction_kind(op: str | None) -> str | None:
    """"matmul" or "convolution" for an aten op that TF32-like switches lower, else None."""
    if op is None:
        return None
    name = _name(op)
    if name in _CONTRACT_FIRST or name in _CONTRACT_SECOND or any(a in name for a in _ATTENTION):
        return "matmul"
    return "convolution" if "convolution" in name else None


def _numel(shape: Shape) -> int:
    return math.prod(shape) if shape else 1


def _generic_length(inputs: list[Shape], outputs: list[Shape], index: int) -> int:
    """The largest argument's elements per element of result `index` (a sum over a dimension, over the batch for a
    weight gradient); 1 for an elementwise op."""
    if not inputs:
        return 1
    largest = max(_numel(s) for s in inputs)
    result = _numel(outputs[index]) if 0 <= index < len(outputs) else largest
    return max(1, largest // max(result, 1))


def _convolution_length(name: str, inputs: list[Shape], outputs: list[Shape], index: int) -> int:
    """Forward `convolution(input, weight, ...)`: input channels per group times the kernel. Backward
    `convolution_backward(grad_output, input, weight, ...)`: output channels times the kernel for the input's
    gradient (result 0), batch times output positions for the weight's and bias's (results 1, 2)."""
    backward = "backward" in name
    position = 2 if backward else 1
    if len(inputs) <= position or len(inputs[position]) < 3:
        return _generic_length(inputs, outputs, index)
    weight = inputs[position]
    kernel = _numel(weight[2:])
    if not backward:
        return max(1, weight[1] * kernel)
    if index == 0:
        return max(1, weight[0] * kernel)
    grad_output = inputs[0]
    return max(1, _numel(grad_output) // grad_output[1]) if len(grad_output) >= 2 and grad_output[1] else 1


def op_reduction_length(op: str, inputs: list[Shape], outputs: list[Shape], index: int = 0) -> int:
    """The longest sum result `index` of `op` computes an element from, from the shapes of the op's floating
    arguments and results in order (an aten op name as dumps write it: `aten.mm.default`)."""
    name = _name(op)
    if name in _CONTRACT_FIRST or name in _CONTRACT_SECOND:
        # The add- forms take the accumulator first, unless it was not recorded (an uninitialised one, beta=0).
        operand = inputs[1] if name in _CONTRACT_SECOND and len(inputs) >= 3 else (inputs[0] if inputs else ())
        return max(operand[-1] if operand else 1, _generic_length(inputs, outputs, index))
    if "convolution" in name:
        return _convolution_length(name, inputs, outputs, index)
    if any(a in name for a in _ATTENTION):
        # Forward (query, key, value): the head dimension for the scores, the key length for the output. Backward
        # (grad_out, query, key, value): both of those, and the query length for the key's and value's gradients.
        shapes = [s for s in inputs if len(s) >= 2]
        return max([1, *(s[-1] for s in shapes), *(s[-2] for s in shapes)])
    if any(r in name for r in _LAST_DIMENSION) and inputs and inputs[0]:
        return max(inputs[0][-1], _generic_length(inputs, outputs, index))
    return _generic_length(inputs, outputs, index)


def module_contractions(model: torch.nn.Module, root_name: str) -> dict[str, list]:
    """Per module (qualified name, the root as `root_name`) whose parameters, its own or its children's, include a
    matrix or a kernel: `[fan_in, fan_out, convolution]` — the longest sum a forward makes with them (a weight's
    fan-in), the longest a backward makes (its fan-out), and whether one is a convolution kernel. Embedding tables
    are lookups, not contractions, and are left out."""
    own: dict[str, list] = {}
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
            continue
        for parameter in module.parameters(recurse=False):
            if parameter.dim() >= 2 and parameter.shape[0] and parameter.numel():
                entry = own.setdefault(name, [1, 1, False])
                entry[0] = max(entry[0], parameter.numel() // parameter.shape[0])
                entry[1] = max(entry[1], parameter.shape[0] * _numel(parameter.shape[2:]))
                entry[2] = entry[2] or parameter.dim() >= 3
    contractions: dict[str, list] = {}
    for owner, entry in own.items():  # each owner's figures count for it and every module above it
        parts = owner.split(".") if owner else []
        for depth in range(len(parts), -1, -1):
            merged = contractions.setdefault(".".join(parts[:depth]) or root_name, [1, 1, False])
            merged[0], merged[1] = max(merged[0], entry[0]), max(merged[1], entry[1])
            merged[2] = merged[2] or entry[2]
    return contractions
