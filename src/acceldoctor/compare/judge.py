"""Align two recorded runs by key and find where they part: the first recorded tensor whose difference is beyond
what the lower-precision dtype of the two explains, then the next places where new error enters.

Only tensors a call produces are judged (forward outputs, backward gradients of the inputs): the inputs of a call
are the outputs of earlier ones, and serve to tell a call's own error from the error it inherited.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field

import torch

from acceldoctor.compare.metrics import eps_of, error_from_stats, nonfinite, number, tensor_metrics
from acceldoctor.compare.precision import RunPrecision
from acceldoctor.compare.reduction import contraction_kind, op_reduction_length, tolerance_factor

# A produced tensor diverges when its relative L2 error exceeds this many machine epsilons of the precision the two
# runs compute in (the less precise of the two runs' precisions, see run_precision, or of the key's dtypes when both
# runs used it there), times reduction.tolerance_factor for a call summing more than 16,384 terms per element.
# Healthy float32-vs-bfloat16 runs of the test models stay well below it (tests/compare).
TOLERANCE_EPS = 32.0
# A call adds error of its own when its error is beyond the tolerance and this many times its inputs' error: a
# layer norm or softmax may amplify what it inherits, but not tenfold.
OWN_ERROR_FACTOR = 10.0
PRODUCED = ("output", "grad_input")


@dataclass
class KeyComparison:
    key: str
    module: str
    op: str | None
    direction: str
    io: str
    dtypes: tuple[str, str]
    shape: tuple
    error: float  # relative L2 error (from statistics: a lower bound)
    tolerance: float
    metrics: dict[str, float] = field(default_factory=dict)
    from_tensors: bool = False
    nonfinite: tuple[int, int] = (0, 0)
    note: str = ""  # shapes differ, non-finite on one side
    inputs_error: float = 0.0  # the largest relative error among the call's inputs
    own: bool = True  # the error is this call's own, not only inherited from its inputs
    tolerance_dtype: str = "float32"
    dtype_changed: bool = False  # the key's dtypes differ although the runs compute in the same dtype
    between: list[str] | None = None  # an input that already differs: the calls only one run made just before it
    random: bool = False  # an op that draws random numbers: not compared
    reduction_length: int = 1  # terms summed per element (reduction.py): a long sum widens the tolerance

    @property
    def ratio(self) -> float:
        return self.error / self.tolerance if self.tolerance > 0 else math.inf

    @property
    def diverges(self) -> bool:
        return bool(self.note) or self.ratio > 1.0

    @property
    def produced(self) -> bool:
        return self.io in PRODUCED

    def verdict(self) -> str:
        if self.random:
            return "draws random numbers: not compared"
        if self.note:
            return self.note
        if self.between is not None and self.io == "parameter":
            return (f"this weight differs by {self.error:.3g} (relative to its module's weights"
                    f"{'' if self.from_tensors else ', at least'}) as this step starts, though every call of the "
                    "steps before agreed within rounding: the optimizer step changed it differently (an optimizer "
                    "that normalizes its updates, like Adam, also turns gradients that are only rounding noise into "
                    "full-size steps: compare one step to tell)")
        if self.between is not None:
            extra = f" (calls only one run made just before: {', '.join(self.between)})" if self.between else ""
            return (f"differs by {self.error:.3g} (relative L2{'' if self.from_tensors else ', at least'}) as it "
                    f"enters this call, though every call before agreed: the error entered between calls{extra}")
        where = "its own" if self.own else "inherited from its inputs"
        computed = (f"; computed in {self.dtypes[0]} in run A and {self.dtypes[1]} in run B"
                    if self.dtypes[0] != self.dtypes[1] and self.dtype_changed else "")
        return (f"differs by {self.error:.3g} (relative L2{'' if self.from_tensors else ', at least'}), "
                f"{self.ratio:.3g}x what {self.tolerance_dtype} rounding explains; error {where}{computed}"
                if self.diverges else f"within {self.tolerance_dtype} rounding")

    def as_json(self) -> dict:
        return {"key": self.key, "module_or_op": self.op or self.module, "module": self.module, "op": self.op,
                "direction": self.direction, "io": self.io, "dtypes": list(self.dtypes), "shape": list(self.shape),
                "metrics": {"rel_l2_error": self.error, "tolerance": self.tolerance, "ratio": self.ratio,
                            "reduction_length": self.reduction_length, **self.metrics,
                            "nonfinite_a": self.nonfinite[0], "nonfinite_b": self.nonfinite[1]},
                "from_tensors": self.from_tensors, "own_error": self.own, "verdict": self.verdict()}


def main_dtype(dump) -> str:
    """The dtype most of a run's recorded tensors have."""
    counts = Counter(r.dtype for r in dump.records)
    return counts.most_common(1)[0][0] if counts else "float32"


def run_precision(dump) -> RunPrecision:
    """The precision a run computes in: its main dtype, and for contractions what the recorder saw lower it
    (precision.py: autocast, TF32/HF32, float32_matmul_precision)."""
    return RunPrecision.of(dump, main_dtype(dump))


def key_precision(precision: RunPrecision, dump, record) -> str:
    """The precision a run computed `record` in: a contraction's (an op that TF32-like switches lower, or a module
    holding matrices or kernels) or the run's base precision."""
    if record.io == "parameter":
        return precision.base
    kind = contraction_kind(record.op) if record.op is not None else _module_kind(dump, record.module)
    return {"matmul": precision.matmul, "convolution": precision.convolution,
            "both": precision.contraction}.get(kind, precision.base)


def _module_contraction(dump, module: str) -> list | None:
    entry = (dump.meta.get("contractions") or {}).get(module) if isinstance(dump.meta.get("contractions"),
                                                                             dict) else None
    valid = isinstance(entry, list) and len(entry) == 3 and all(isinstance(v, int) for v in entry[:2])
    return entry if valid else None


def _module_kind(dump, module: str) -> str | None:
    entry = _module_contraction(dump, module)
    return None if entry is None else ("both" if entry[2] else "matmul")


def reduction_length(dump, record) -> int:
    """How many terms the call of `record` sums per element of it (reduction.py): from the op and its shapes at
    op level; at module level from the fan-in (forward) or fan-out (backward) of the module's parameters as the
    recorder saw them, and from its shapes. 1 where the shapes make no sense."""
    try:
        inputs = [r.shape for r in dump.inputs_of(record)]
        produced = dump.outputs_of(record)
        outputs = [r.shape for r in produced]
        index = next((i for i, r in enumerate(produced) if r.key == record.key), 0)
        if record.op is not None:
            return op_reduction_length(record.op, inputs, outputs, index)
        entry = _module_contraction(dump, record.module)
        known = 1 if entry is None else (entry[0] if record.direction == "forward" else max(entry[0], entry[1]))
        return max(known, op_reduction_length("", inputs, outputs, index))
    except (IndexError, ValueError, TypeError, ZeroDivisionError):
        return 1


def _input_scale(dump, record) -> float:
    """The RMS of the call's largest input: an output that cancels (a mean, a difference) is judged against the
    size of what it was computed from, not against its own small size. A parameter is judged against the largest
    parameter of its module: a bias initialised to zero holds rounding noise after a step, tiny next to the
    weights it is added to, and its own size would make that noise look like a difference."""
    if record.io == "parameter":
        owner = record.module.rpartition(".")[0]
        sources = [r for r in dump.parameters_at(record.step) if r.module.rpartition(".")[0] == owner]
    else:
        sources = dump.inputs_of(record)
    scales = [number(i.stats.get("l2")) / math.sqrt(max(math.prod(i.shape) if i.shape else 1, 1))
              for i in sources]
    return max((x for x in scales if math.isfinite(x)), default=0.0)


@functools.cache
def is_random_op(op: str | None) -> bool:
    """Whether an aten op draws random numbers (dropout, randn): two runs need not agree on it."""
    if op is None:
        return False
    from acceldoctor.compare.callargs import resolve_op

    try:
        return torch.Tag.nondeterministic_seeded in resolve_op(op).tags
    except (LookupError, AttributeError, RuntimeError):
        return False


def _dtype_changed(a, b, precisions: tuple[RunPrecision, RunPrecision], computed: tuple[str, str]) -> bool:
    """The key's dtypes differ although the runs compute in the same base precision, and the run holding the less
    precise one was not allowed to lower it (autocast, or a contraction switch to that precision)."""
    if a.dtype == b.dtype or precisions[0].base != precisions[1].base:
        return False
    side = 0 if eps_of(a.dtype) > eps_of(b.dtype) else 1
    lower = (a.dtype, b.dtype)[side]
    return lower not in precisions[side].autocast and eps_of(lower) > eps_of(computed[side])


def compare_records(a, b, dump_a, dump_b, precisions: tuple[RunPrecision, RunPrecision],
                    tolerance_eps: float = TOLERANCE_EPS) -> KeyComparison:
    """One key of two runs (records `a` and `b` of dumps `dump_a` and `dump_b`)."""
    computed = (key_precision(precisions[0], dump_a, a), key_precision(precisions[1], dump_b, b))
    run_eps = max(eps_of(computed[0]), eps_of(computed[1]))
    key_eps = min(eps_of(a.dtype), eps_of(b.dtype))  # lower only where both runs computed it so
    tolerance_dtype = max([*computed, a.dtype if eps_of(a.dtype) == key_eps else b.dtype], key=eps_of)
    length = max(reduction_length(dump_a, a), reduction_length(dump_b, b)) if a.io in PRODUCED else 1
    comparison = KeyComparison(a.key, a.module, a.op, a.direction, a.io, (a.dtype, b.dtype), tuple(a.shape), 0.0,
                               tolerance_eps * max(run_eps, key_eps) * tolerance_factor(length),
                               nonfinite=(nonfinite(a.stats), nonfinite(b.stats)), tolerance_dtype=tolerance_dtype,
                               reduction_length=length, dtype_changed=_dtype_changed(a, b, precisions, computed))
    if is_random_op(a.op):
        comparison.random = True  # its outputs differ by design; what it feeds is judged on its own inputs
        return comparison
    if tuple(a.shape) != tuple(b.shape):
        comparison.note = f"shapes differ: {list(a.shape)} against {list(b.shape)}"
        comparison.error = math.inf
        return comparison
    numel = math.prod(a.shape) if a.shape else 1
    norm = max(number(a.stats.get("l2")), number(b.stats.get("l2")))
    floor = max(_input_scale(dump_a, a), _input_scale(dump_b, b)) * math.sqrt(numel)
    rescale = norm / max(norm, floor) if math.isfinite(norm) and norm > 0 else 1.0
    ta, tb = dump_a.tensor(a), dump_b.tensor(b)
    if ta is not None and tb is not None:
        comparison.metrics = tensor_metrics(ta, tb, comparison.tolerance)
        comparison.error = comparison.metrics.pop("rel_l2_error") * rescale
        comparison.from_tensors = True
    else:
        comparison.error = error_from_stats(a.stats, b.stats, numel) * rescale
    if comparison.nonfinite[0] != comparison.nonfinite[1]:
        side = "A" if comparison.nonfinite[0] > comparison.nonfinite[1] else "B"
        comparison.note = (f"non-finite values on one side: run {side} has {max(comparison.nonfinite)} NaN/Inf "
                           f"where the other has {min(comparison.nonfinite)}")
    return comparison


@dataclass
class Comparison:
    """Two runs compared key by key, in run A's order of execution."""

    keys: list[KeyComparison]
    only_a: list[str]
    only_b: list[str]
    first_nonfinite: dict | None = None  # per run ("a", "b"): the first call that made NaN/Inf from finite inputs
    losses: dict | None = None  # the loss trajectories of the one-command mode
    replay: dict | None = None  # who is wrong, when the first divergence could be re-run

    @property
    def divergences(self) -> list[KeyComparison]:
        """Every produced tensor beyond its tolerance, in order (where error enters and where it travels), and an
        input that differs before any produced tensor did."""
        return [k for k in self.keys if k.diverges and (k.produced or k.between is not None)]

    @property
    def first_divergence(self) -> KeyComparison | None:
        """The first produced tensor that diverges with error of its own."""
        return next((k for k in self.divergences if k.own), None)

    @property
    def equivalent(self) -> bool:
        return self.first_divergence is None

    def sources(self, limit: int = 5) -> list[KeyComparison]:
        """The first divergence and the next places where error of their own enters, up to `limit` in all."""
        return [k for k in self.divergences if k.own][:limit]


def compare_dumps(dump_a, dump_b, tolerance_eps: float = TOLERANCE_EPS) -> Comparison:
    by_key_b = dump_b.by_key()
    keys_a = {r.key for r in dump_a.records}
    precisions = (run_precision(dump_a), run_precision(dump_b))
    compared: dict[str, KeyComparison] = {}
    ordered = []
    for record in dump_a.records:
        other = by_key_b.get(record.key)
        if other is None:
            continue
        comparison = compare_records(record, other, dump_a, dump_b, precisions, tolerance_eps)
        compared[record.key] = comparison
        ordered.append((record, comparison))
    _attribute(ordered, compared, dump_a, dump_b, keys_a)
    only_a = [r.key for r in dump_a.records if r.key not in by_key_b]
    only_b = [r.key for r in dump_b.records if r.key not in keys_a]
    return Comparison([c for _, c in ordered], only_a, only_b,
                      {"a": first_nonfinite(dump_a), "b": first_nonfinite(dump_b)})


def call_of(key: str) -> str:
    """The call a key belongs to: `attn/aten._softmax.default#0` of `attn/aten._softmax.default#0/forward/output0`."""
    return key.rsplit("/", 2)[0]


def _attribute(ordered, compared: dict[str, KeyComparison], dump_a, dump_b, keys_a: set[str]) -> None:
    """Mark which diverging keys carry error of their own (see KeyComparison.own)."""
    by_key_b = dump_b.by_key()
    produced_diverged = False
    largest_produced = 0.0  # the largest error any call produced so far, within its tolerance or not
    last_b_seq = -1
    for record, comparison in ordered:
        b_seq = by_key_b[record.key].seq
        if comparison.produced and math.isfinite(comparison.error):
            largest_produced = max(largest_produced, comparison.error)
        if comparison.diverges and comparison.produced:
            # What the call computes from: its inputs and, at module level, the weights its module held then.
            sources = dump_a.inputs_of(record) + (dump_a.parameters_of(record) if record.op is None else [])
            inputs = [compared[i.key] for i in sources if i.key in compared]
            # An input computed in another dtype than in the other run: this call ran in that precision, its error
            # is its own (a kernel that silently dropped precision), not inherited.
            recast = any(i.dtype_changed for i in inputs)
            comparison.inputs_error = max((i.error for i in inputs if not i.dtype_changed), default=0.0)
            if comparison.note:
                comparison.own = not any(i.note for i in inputs)
            else:
                comparison.own = recast or comparison.error > OWN_ERROR_FACTOR * comparison.inputs_error
            if not comparison.own and not produced_diverged:
                _blame_weights(inputs, comparison.inputs_error)
            produced_diverged = True
        elif (comparison.ratio > OWN_ERROR_FACTOR and comparison.error > OWN_ERROR_FACTOR * largest_produced
              and not produced_diverged and not comparison.dtype_changed):
            # An input differs clearly (well past the tolerance: an output's error is measured against its call's
            # inputs, an input's against itself, and well past what any call before produced, as a TF32 product
            # within its own tolerance) although no call before it diverged: the error entered between calls,
            # in a call only one run made (an extra op, a corrupting hook) or in a tensor changed in place.
            extras = [r.key for r in dump_b.records if last_b_seq < r.seq < b_seq and r.key not in keys_a
                      and r.io != "parameter"]
            comparison.between = list(dict.fromkeys(call_of(k) for k in extras))[:5]
            comparison.own = True
            produced_diverged = True
        last_b_seq = max(last_b_seq, b_seq)


def _blame_weights(sources: list[KeyComparison], inputs_error: float) -> None:
    """The first call to diverge did so with its inputs' error, and the largest is a weight beyond its tolerance
    (not by the tenfold an input needs to count as a source alone): the weight is where the error entered, between
    the steps (an optimizer step outside the model)."""
    weights = [c for c in sources if c.io == "parameter" and c.diverges and c.error >= inputs_error]
    if weights and weights[0].between is None:
        weights[0].between, weights[0].own = [], True


def first_nonfinite(dump) -> dict | None:
    """The first call that produced NaN from inputs that had none (`--first-nonfinite`). Inf alone is not hunted:
    masks fill scores with -inf on purpose; a NaN is where arithmetic went wrong (inf - inf, 0 * inf, 0 / 0)."""
    for record in dump.records:
        if record.io not in (*PRODUCED, "parameter") or not int(record.stats.get("nan", 0) or 0):
            continue  # a parameter is produced too: by the optimizer step before
        inputs = dump.inputs_of(record) + (dump.parameters_of(record) if record.io != "parameter" and
                                           record.op is None else [])
        if all(not int(i.stats.get("nan", 0) or 0) for i in inputs):
            return {"key": record.key, "module_or_op": record.op or record.module, "direction": record.direction,
                    "nan": int(record.stats.get("nan", 0)), "inf": int(record.stats.get("inf", 0)),
                    "inputs_checked": len(inputs)}
    return None
