"""Who is wrong: re-run the first diverging op or module on the CPU in float64 with each side's recorded inputs, and
judge each side's error against that golden relative to the error a healthy CPU run in the side's own dtype makes.
A side allowed to compute its contractions in less (TF32, autocast: precision.py) is measured against a healthy run
that does the same: the contractions' floating inputs rounded to that precision, as TF32 hardware and autocast do.

Each side is judged on its own inputs, so its error is its own; how much the two sides' inputs alone move the
golden is the inherited part. A side whose error is WRONG_FACTOR times the healthy error (or more) is wrong.
"""

from __future__ import annotations

import contextlib
import copy
import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from acceldoctor.compare.metrics import eps_of
from acceldoctor.compare.reduction import contraction_kind

WRONG_FACTOR = 5.0
SIDES = ("a", "b")


def relative_error(x: torch.Tensor, golden: torch.Tensor) -> float:
    """‖x - golden‖ / ‖golden‖ over the finite elements; inf when x has NaN or Inf where the golden has another
    value (the same infinity, or NaN for NaN, counts as agreeing)."""
    x, golden = x.detach().to("cpu", torch.float64), golden.detach().to("cpu", torch.float64)
    finite = torch.isfinite(x) & torch.isfinite(golden)
    agreeing_specials = (torch.isnan(x) & torch.isnan(golden)) | (torch.isinf(x) & (x == golden))
    if not bool((finite | agreeing_specials).all()):
        return math.inf
    x, golden = x[finite], golden[finite]
    norm = float(golden.norm())
    return float((x - golden).norm()) / norm if norm > 0 else float((x - golden).norm())


def round_to(t: torch.Tensor, precision: str) -> torch.Tensor:
    """t's values as `precision` holds them ("tf32": float32 with a 10-bit mantissa, rounded to nearest)."""
    if precision == "tf32":
        bits = t.float().contiguous().view(torch.int32)
        rounded = ((bits + 0x1000) & ~0x1FFF).view(torch.float32)
        return torch.where(torch.isfinite(t), rounded, t.float()).to(t.dtype)  # infinities and NaN as they were
    return t.to(getattr(torch, precision)).to(t.dtype)


class LoweredContractions(TorchDispatchMode):
    """While active, the floating inputs of every contraction (matmul, convolution, attention) are rounded to
    `precision` first, and the op computes in the tensors' own dtype: a healthy TF32 or autocast run, on a CPU."""

    def __init__(self, precision: str):
        super().__init__()
        self.precision = precision

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if contraction_kind(str(func)) is not None:
            lowered = eps_of(self.precision)

            def lower(value):
                if isinstance(value, torch.Tensor) and value.is_floating_point() and eps_of(
                        str(value.dtype).removeprefix("torch.")) < lowered:
                    return round_to(value, self.precision)
                return value

            args, kwargs = tree_map(lower, args), tree_map(lower, kwargs)
        return func(*args, **kwargs)


def _healthy(dtype: str, precision: str):
    """The context a healthy CPU run of a side computes in."""
    return LoweredContractions(precision) if eps_of(precision) > eps_of(dtype) else contextlib.nullcontext()


def _label(dtype: str, precision: str) -> str:
    return dtype if precision == dtype else f"{dtype} (contractions in {precision})"


def judge_sides(recorded: dict[str, torch.Tensor], golden: dict[str, torch.Tensor],
                healthy: dict[str, torch.Tensor], dtypes: dict[str, str],
                precisions: dict[str, str] | None = None) -> dict:
    """Per side: its error against its own golden, the healthy CPU error in its dtype (and precision), and whether
    it is wrong; plus the inherited error (the two goldens apart) and a one-sentence verdict."""
    precisions = precisions or dtypes
    sides = {}
    for side in SIDES:
        error = relative_error(recorded[side], golden[side])
        floor = relative_error(healthy[side], golden[side])
        # A healthy run can be exact on tiny inputs: never ask a side to beat WRONG_FACTOR times one rounding of
        # its output (relative L2 error about eps/4: rounding to nearest errs by eps/sqrt(12) RMS).
        allowed = WRONG_FACTOR * max(floor, eps_of(dtypes[side]) / 4)
        sides[side] = {"error": error, "healthy_error": floor, "dtype": _label(dtypes[side], precisions[side]),
                       "wrong": error > allowed, "times_healthy": error / floor if floor > 0 else math.inf}
    inherited = relative_error(golden["a"], golden["b"])
    wrong = [s for s in SIDES if sides[s]["wrong"]]
    if len(wrong) == 1:
        side = sides[wrong[0]]
        verdict = (f"run {wrong[0].upper()} is wrong here: its error against the float64 golden is "
                   f"{side['error']:.3g}, {_times(side)} a healthy {side['dtype']} CPU run's")
    elif wrong:
        verdict = "both runs are wrong here, each beyond a healthy CPU run's error in its dtype"
    else:
        inputs_differ = inherited > max(sides[s]["healthy_error"] for s in SIDES)
        verdict = ("neither run computes this call wrongly: each is within a healthy CPU run's error in its dtype "
                   "on its own inputs" + (", so the difference comes from the inputs it was given" if inputs_differ
                                          else ""))
    return {"sides": sides, "inherited_error": inherited, "verdict": verdict}


def _times(side: dict) -> str:
    return "infinitely many times" if math.isinf(side["times_healthy"]) else f"{side['times_healthy']:.3g}x"


def _arguments(call_args) -> str:
    """An op call's non-tensor arguments, as text to compare and show (tensor places and dtypes left out)."""
    def strip(value):
        if isinstance(value, dict):
            if "$input" in value:
                return "tensor"
            if "$dtype" in value or "$device" in value:
                return "dtype/device"
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return str(strip({"args": call_args.get("args"), "kwargs": call_args.get("kwargs")}))


def _on_cpu(value, dtype: torch.dtype):
    """Recorded call arguments moved to the CPU with floating tensors in `dtype`; for the float64 golden, floating
    dtype arguments (`_to_copy(dtype=...)`) become float64 too, while a healthy run keeps them as recorded."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", dtype) if value.is_floating_point() else value.detach().cpu()
    if isinstance(value, torch.dtype) and value.is_floating_point and dtype == torch.float64:
        return torch.float64
    if isinstance(value, torch.device):
        return torch.device("cpu")
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _on_cpu(v, dtype) for k, v in value.items()}
    return value


def _pick(out, index: int) -> torch.Tensor:
    return out[index] if isinstance(out, (list, tuple)) else out


def replay_op(op, calls: dict[str, tuple[tuple, dict]], recorded: dict[str, torch.Tensor], index: int,
              dtypes: dict[str, str], precisions: dict[str, str] | None = None) -> dict:
    """`calls[side]` = (args, kwargs) as recorded on that side (tensors on the CPU); `recorded[side]` its output."""
    precisions = precisions or dtypes
    golden, healthy = {}, {}
    for side in SIDES:
        args, kwargs = calls[side]
        golden[side] = _pick(op(*_on_cpu(args, torch.float64), **_on_cpu(kwargs, torch.float64)), index)
        dtype = getattr(torch, dtypes[side])
        with _healthy(dtypes[side], precisions[side]):
            healthy[side] = _pick(op(*_on_cpu(args, dtype), **_on_cpu(kwargs, dtype)), index)
    return judge_sides(recorded, golden, healthy, dtypes, precisions)


def replay_module(modules: dict[str, torch.nn.Module], inputs: dict[str, list[torch.Tensor]],
                  recorded: dict[str, torch.Tensor], index: int, dtypes: dict[str, str],
                  precisions: dict[str, str] | None = None) -> dict:
    """The forward of each side's module (output `index`), re-run on a float64 copy and on a CPU copy in the side's
    dtype (and precision)."""
    precisions = precisions or dtypes
    golden, healthy = {}, {}
    for side in SIDES:
        for target, as_dtype in ((golden, torch.float64), (healthy, getattr(torch, dtypes[side]))):
            module = copy.deepcopy(modules[side]).to("cpu", as_dtype)
            lowered = _healthy(dtypes[side], precisions[side]) if target is healthy else contextlib.nullcontext()
            with torch.no_grad(), lowered:
                target[side] = _pick(module(*_on_cpu(inputs[side], as_dtype)), index)
    return judge_sides(recorded, golden, healthy, dtypes, precisions)


def _side_precision(dump, record) -> tuple[str, str]:
    """The dtype a side's run computes in, and the precision it computed this record's call in."""
    from acceldoctor.compare.judge import key_precision, run_precision

    precision = run_precision(dump)
    return precision.base, key_precision(precision, dump, record)


def replay_recorded_op(dump_a, dump_b, key: str) -> dict | None:
    """Who is wrong at `key`, from two op-level dumps that hold the call's input tensors and arguments; None when
    they do not (statistics only, module level, or an argument that could not be recorded)."""
    from acceldoctor.compare.callargs import decode_call, resolve_op

    calls, recorded, dtypes, precisions, op_name, index = {}, {}, {}, {}, None, 0
    calls_args_a = None
    for side, dump in zip(SIDES, (dump_a, dump_b), strict=True):
        output = dump.by_key().get(key)
        if output is None or output.op is None:
            return None
        call_args = dump.call_args_of(output)
        if side == "b" and call_args is not None and _arguments(call_args) != _arguments(calls_args_a):
            return {"op": output.op, "verdict": "the two runs called it with different arguments: "
                    f"{_arguments(calls_args_a)} in run A, {_arguments(call_args)} in run B"}
        calls_args_a = call_args
        inputs = {r.index: dump.tensor(r) for r in dump.inputs_of(output)}
        out = dump.tensor(output)
        if call_args is None or out is None or any(t is None for t in inputs.values()):
            return None
        try:
            calls[side] = decode_call(call_args, inputs)
        except (ValueError, KeyError, TypeError, LookupError):
            return None
        # judged against a healthy CPU run in the dtype the run computes in, not the one this op happened to use
        recorded[side], op_name = out, output.op
        dtypes[side], precisions[side] = _side_precision(dump, output)
        index = output.index
    try:
        op = resolve_op(op_name)
        return {"op": op_name, **replay_op(op, calls, recorded, index, dtypes, precisions)}
    except (RuntimeError, TypeError, ValueError, AttributeError, LookupError) as exc:
        return {"op": op_name, "verdict": f"the op could not be re-run on the CPU ({type(exc).__name__}: {exc})"}


def replay_recorded_module(dump_a, dump_b, key: str, modules: dict[str, torch.nn.Module]) -> dict | None:
    """Who is wrong at module-level forward `key`, from dumps holding the call's inputs and output, and each run's
    module as it was at that call; None when an input was not a recorded floating tensor."""
    inputs, recorded, dtypes, precisions, index = {}, {}, {}, {}, 0
    for side, dump in zip(SIDES, (dump_a, dump_b), strict=True):
        output = dump.by_key().get(key)
        if output is None or output.direction != "forward":
            return None
        records = dump.inputs_of(output)
        tensors = [dump.tensor(r) for r in records]
        if [r.index for r in records] != list(range(len(records))) or any(t is None for t in tensors):
            return None  # a non-floating or unstored input: the call cannot be rebuilt
        out = dump.tensor(output)
        if out is None:
            return None
        inputs[side], recorded[side], index = tensors, out, output.index
        dtypes[side], precisions[side] = _side_precision(dump, output)
    try:
        return {"module": key.split("#", 1)[0], **replay_module(modules, inputs, recorded, index, dtypes,
                                                                precisions)}
    except (RuntimeError, TypeError, ValueError) as exc:
        return {"module": key.split("#", 1)[0],
                "verdict": f"the module could not be re-run on the CPU ({type(exc).__name__}: {exc})"}
