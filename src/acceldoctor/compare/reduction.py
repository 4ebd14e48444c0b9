"""How many terms a call sums into each element it produces, and how much wider that makes its tolerance.

Rounding error of a sum grows with its length: about as its square root for the blocked and pairwise sums kernels
use, and for a plain sequential float32 sum too in the probabilistic bound (Higham & Mary, 2019). Two devices that
sum a long reduction in different orders therefore differ by more than two that sum a short one: a float32 product
with 131,072 terms summed sequentially is about 46 float32 epsilons from the exact one, where the BLAS on this CPU
is 4. The flat tolerance (judge.TOLERANCE_EPS) covers reductions up to REFERENCE_LENGTH terms; a longer one gets
sqrt(length / REFERENCE_LENGTH) times more.

Lengths are read from shapes only, so they work from statistics dumps: at op level from the op and its arguments'
shapes; at module level from the module's parameters, recorded in the dump's meta at the start of recording (a
module's own outputs do not tell a Linear's in_features). They err on the long side: a length only ever widens.
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

Shape = Sequence[int]


def tolerance_factor(length: int) -> float:
    """How many times the flat tolerance a reduction of `length` terms is given."""
    return max(1.0, math.sqrt(length / REFERENCE_LENGTH))


def _numel(shape: Shape) -> int:
    return math.prod(shape) if shape else 1


def _convolution_length(inputs: list[Shape]) -> int:
    """A convolution, forward or backward: every contraction it can make from its weight (the first argument of
    rank 3 or more after the first), and the batch-and-space sum of a weight gradient (from the first argument)."""
    weight = next((s for s in inputs[1:] if len(s) >= 3), None)
    if weight is None or not weight[0] or not weight[1]:
        return _generic_length(inputs, [])
    kernel = _numel(weight[2:])
    lengths = [weight[1] * kernel, weight[0] * kernel]
    if inputs and len(inputs[0]) >= 2 and inputs[0][1]:
        lengths.append(_numel(inputs[0]) // inputs[0][1])
    return max(lengths)


def _generic_length(inputs: list[Shape], outputs: list[Shape]) -> int:
    """A reduction's length: the largest argument's elements per element of the smallest result (a sum over the
    batch of a norm's weight gradient, a mean over a dimension); 1 for an elementwise op."""
    if not inputs:
        return 1
    largest = max(_numel(s) for s in inputs)
    smallest = min((_numel(s) for s in outputs), default=largest)
    return max(1, largest // max(smallest, 1))


def op_reduction_length(op: str, inputs: list[Shape], outputs: list[Shape]) -> int:
    """The longest sum op computes one result element from, from the shapes of its floating arguments and results
    in order (an aten op name as dumps write it: `aten.mm.default`)."""
    name = op.split(".")[1] if op.startswith("aten.") and op.count(".") >= 1 else op
    if name in _CONTRACT_FIRST or name in _CONTRACT_SECOND:
        operand = inputs[1] if name in _CONTRACT_SECOND and len(inputs) >= 2 else (inputs[0] if inputs else ())
        return max(operand[-1] if operand else 1, _generic_length(inputs, outputs))
    if "convolution" in name:
        return _convolution_length(inputs)
    if "scaled_dot_product" in name and len(inputs) >= 2 and len(inputs[1]) >= 2:
        query, key = inputs[0], inputs[1]
        return max(query[-1], key[-2], _generic_length(inputs, outputs))
    return _generic_length(inputs, outputs)


def module_reduction_lengths(model: torch.nn.Module, root_name: str) -> dict[str, int]:
    """Per module (qualified name, the root as `root_name`): the longest contraction its parameters, its own and
    its children's, take part in, forward (a weight's fan-in) or backward (its fan-out). Modules without a matrix
    or kernel parameter are left out (their length is read from their records' shapes)."""
    lengths: dict[str, int] = {}
    for name, module in model.named_modules():
        longest = 1
        for parameter in module.parameters():
            if parameter.dim() >= 2 and parameter.shape[0]:
                longest = max(longest, parameter.numel() // parameter.shape[0], parameter.shape[0])
        if longest > 1:
            lengths[name or root_name] = longest
    return lengths
