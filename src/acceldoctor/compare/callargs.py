"""An op call's arguments as JSON, so the call can be replayed later (on the CPU, in float64).

Encoding of `call_args = {"args": [...], "kwargs": {...}, "replayable": bool}`:
- a tensor argument → `{"$input": i}`: i counts every tensor argument in order (args, then kwargs, lists
  flattened), and the floating ones are recorded as io `input{i}` of the same call. Integer and bool tensors are
  not recorded: they are kept inline as `{"$input": i, "$tensor": {"dtype", "shape", "data"}}` (up to
  INLINE_TENSOR_ELEMENTS elements; larger ones make the call not replayable);
- `torch.dtype` → `{"$dtype": "float32"}`, `torch.device` → `{"$device": "cuda:0"}`, `torch.memory_format` →
  `{"$memory_format": "contiguous_format"}`, `torch.layout` → `{"$layout": "strided"}`;
- finite floats, ints, bools, None and strings as themselves; NaN and infinities as `{"$float": "nan"}` (etc.);
  lists and tuples as lists;
- anything else → `{"$repr": "..."}`, and `replayable` is false.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

INLINE_TENSOR_ELEMENTS = 65536


class InlineTensor:
    """A non-floating tensor argument, copied when the op ran and written out as JSON by the writer thread (so
    reading its values never makes the recording thread wait for the device)."""

    __slots__ = ("index", "tensor")

    def __init__(self, index: int, tensor: torch.Tensor):
        self.index = index
        self.tensor = tensor.detach().clone()

    def to_json(self) -> dict[str, Any]:
        tensor = self.tensor.cpu()
        return {"$input": self.index, "$tensor": {"dtype": str(tensor.dtype).removeprefix("torch."),
                                                  "shape": list(tensor.shape), "data": tensor.tolist()}}


def json_default(obj: Any) -> Any:
    """json.dumps' `default`: the deferred parts of call_args."""
    if isinstance(obj, InlineTensor):
        return obj.to_json()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


class _Encoder:
    def __init__(self):
        self.tensors: list[torch.Tensor] = []
        self.replayable = True

    def encode(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            index = len(self.tensors)
            self.tensors.append(value)
            if value.is_floating_point():
                return {"$input": index}
            if value.is_complex() or value.numel() > INLINE_TENSOR_ELEMENTS:
                self.replayable = False
                return {"$input": index, "$repr": f"{value.dtype} tensor of shape {list(value.shape)}, not kept"}
            return InlineTensor(index, value)
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": "nan" if math.isnan(value) else
                                                       ("inf" if value > 0 else "-inf")}
        if isinstance(value, (list, tuple)):
            return [self.encode(item) for item in value]
        if isinstance(value, torch.dtype):
            return {"$dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, torch.memory_format):
            return {"$memory_format": str(value).removeprefix("torch.")}
        if isinstance(value, torch.layout):
            return {"$layout": str(value).removeprefix("torch.")}
        self.replayable = False
        return {"$repr": repr(value)[:200]}


def encode_call(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """(call_args, the call's tensor arguments in input-index order)."""
    encoder = _Encoder()
    encoded = {"args": [encoder.encode(a) for a in args], "kwargs": {k: encoder.encode(v) for k, v in kwargs.items()}}
    encoded["replayable"] = encoder.replayable
    return encoded, encoder.tensors


def decode_call(call_args: Mapping[str, Any], inputs: Sequence[torch.Tensor | None] | Mapping[int, torch.Tensor],
                device: str | torch.device | None = "cpu") -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The (args, kwargs) to call the op with again. `inputs[i]` is the tensor for `{"$input": i}` (a list, None
    where absent, or a dict by index); `device` replaces every recorded device and places inline tensors (None: keep
    the recorded devices). Raises ValueError when the call cannot be rebuilt."""

    def tensor_for(index: int) -> torch.Tensor:
        found = inputs.get(index) if isinstance(inputs, Mapping) else (
            inputs[index] if 0 <= index < len(inputs) else None)
        if found is None:
            raise ValueError(f"input {index} of the call was not stored")
        return found

    def decode(value: Any) -> Any:
        if isinstance(value, list):
            return [decode(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "$repr" in value:
            raise ValueError(f"not replayable: an argument was recorded only as {value['$repr']}")
        if "$tensor" in value:
            spec = value["$tensor"]
            return torch.tensor(spec["data"], dtype=getattr(torch, spec["dtype"]),
                                device=device).reshape(spec["shape"])
        if "$input" in value:
            return tensor_for(value["$input"])
        if "$float" in value:
            return float(value["$float"])
        if "$dtype" in value:
            return getattr(torch, value["$dtype"])
        if "$device" in value:
            return torch.device(device if device is not None else value["$device"])
        if "$memory_format" in value:
            return getattr(torch, value["$memory_format"])
        if "$layout" in value:
            return getattr(torch, value["$layout"])
        raise ValueError(f"unknown encoded argument {value!r}"[:200])

    if not isinstance(call_args, Mapping) or "args" not in call_args:
        raise ValueError("not an encoded call (no args)")
    return tuple(decode(a) for a in call_args["args"]), {k: decode(v) for k, v in call_args.get("kwargs", {}).items()}


def op_name(func: torch._ops.OpOverload) -> str:
    """The name records use: namespace.op.overload, e.g. aten._softmax.default."""
    return str(func)


def resolve_op(name: str) -> torch._ops.OpOverload:
    """The operator a record's `op` names, e.g. resolve_op("aten.mm.default") is torch.ops.aten.mm.default."""
    namespace, _, rest = name.partition(".")
    packet_name, _, overload = rest.rpartition(".")
    try:
        return getattr(getattr(getattr(torch.ops, namespace), packet_name), overload)
    except (AttributeError, RuntimeError):
        raise LookupError(f"no operator {name} in this torch ({torch.__version__})") from None
