"""What precision a run computes in beyond its tensors' dtypes: noted while recording, read when judging.

A float32 run may compute its products in less than float32 without any tensor showing it: TF32 matmuls and
convolutions on NVIDIA (a 10-bit mantissa), HF32 on Ascend, bfloat16 inside oneDNN on a CPU, and autocast. The
recorder notes, at the start and at every call of the model, what was in effect for the model's device type
(`precision_state`), merged to the least precise seen (`merge_precision`); it is the dump meta's `precision`:
`{"matmul", "convolution"}` (a dtype name, "tf32" included, or null where nothing lowers it) and `autocast`
(`{device type: dtype}` or null). A reader takes it through `RunPrecision.of(dump)`, ignoring what it cannot read
(a dump from before, or a hand-edited one).

Only contractions (matrix products, convolutions, attention) are lowered by these switches: the precision of every
other call stays its tensors' dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from acceldoctor.compare.metrics import eps_of

# The new per-backend API (torch >= 2.9) and the legacy switches, by what each setting means.
_NEW_API = {"tf32": "tf32", "bf16": "bfloat16", "ieee": None}
_LEGACY_MATMUL = {"high": "tf32", "medium": "bfloat16"}


def _setting(read: Callable[[], Any]) -> Any:
    """One switch, or None where this torch lacks it or refuses to say (torch raises when a script mixed the legacy
    and the new API): noting precision must never break a recording."""
    try:
        return read()
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None


def _new_api(*paths: str) -> str | None:
    """The first of these `fp32_precision` settings that says something ("none" defers to the next)."""
    for path in paths:
        node: Any = torch
        for part in path.split("."):
            node = _setting(lambda node=node, part=part: getattr(node, part))
            if node is None:
                break
        if isinstance(node, str) and node in _NEW_API:
            return _NEW_API[node] or "float32"
    return None


def _matmul(device_type: str) -> str | None:
    if device_type == "cuda":
        new = _new_api("backends.cuda.matmul.fp32_precision", "backends.fp32_precision")
        if new is not None:
            return new
        if _setting(lambda: torch.backends.cuda.matmul.allow_tf32):
            return "tf32"
    elif device_type == "cpu":
        new = _new_api("backends.mkldnn.matmul.fp32_precision", "backends.mkldnn.fp32_precision")
        if new is not None:
            return new
        # oneDNN takes bfloat16 for "medium" only; "high" changes nothing on a CPU.
        return "bfloat16" if _setting(torch.get_float32_matmul_precision) == "medium" else None
    elif device_type == "npu":
        matmul = getattr(getattr(torch, "npu", None), "matmul", None)
        if _setting(lambda: matmul.allow_hf32):
            return "tf32"
    return _LEGACY_MATMUL.get(_setting(torch.get_float32_matmul_precision))


def _convolution(device_type: str) -> str | None:
    if device_type == "cuda":
        new = _new_api("backends.cudnn.conv.fp32_precision", "backends.cudnn.fp32_precision", "backends.fp32_precision")
        if new is not None:
            return new
        return "tf32" if _setting(lambda: torch.backends.cudnn.allow_tf32) else None  # on by default in torch
    if device_type == "cpu":
        return _new_api("backends.mkldnn.conv.fp32_precision", "backends.mkldnn.fp32_precision")
    if device_type == "npu":
        conv = getattr(getattr(torch, "npu", None), "conv", None)
        return "tf32" if _setting(lambda: conv.allow_hf32) else None
    return None


def _lowered(precision: str | None) -> str | None:
    return None if precision in (None, "float32") else precision


def precision_state(device_type: str) -> dict[str, Any]:
    """What lowers float32 on `device_type` right now (see the module's docstring)."""
    autocast = {}
    for kind in dict.fromkeys((device_type, "cpu")):
        if _setting(lambda kind=kind: torch.is_autocast_enabled(kind)):
            dtype = _setting(lambda kind=kind: torch.get_autocast_dtype(kind))
            if isinstance(dtype, torch.dtype):
                autocast[kind] = str(dtype).removeprefix("torch.")
    return {"matmul": _lowered(_matmul(device_type)), "convolution": _lowered(_convolution(device_type)),
            "autocast": autocast or None}


def _least_precise(*dtypes: str | None) -> str | None:
    known = [d for d in dtypes if isinstance(d, str)]
    return max(known, key=eps_of) if known else None


def merge_precision(seen: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """The least precise of what was in effect at any call: a switch on once counts."""
    autocast = dict(seen.get("autocast") or {})
    for kind, dtype in (now.get("autocast") or {}).items():
        autocast[kind] = _least_precise(autocast.get(kind), dtype)
    return {"matmul": _least_precise(seen.get("matmul"), now.get("matmul")),
            "convolution": _least_precise(seen.get("convolution"), now.get("convolution")),
            "autocast": autocast or None}


def _dtype_name(value: Any) -> str | None:
    return value.removeprefix("torch.") if isinstance(value, str) and value else None


@dataclass(frozen=True)
class RunPrecision:
    """A run's precision: `base` for every call, `matmul` and `convolution` for contractions, and the dtypes
    autocast was allowed to lower calls to."""

    base: str
    matmul: str
    convolution: str
    autocast: frozenset[str]

    @classmethod
    def of(cls, dump, base: str) -> RunPrecision:
        state = dump.meta.get("precision")
        state = state if isinstance(state, dict) else {}
        autocast = state.get("autocast")
        lowered = frozenset(filter(None, map(_dtype_name, autocast.values()))) if isinstance(autocast, dict) \
            else frozenset()
        # The switches lower float32 only (a bfloat16 run's products are bfloat16 whatever TF32 says).
        switches = base == "float32"
        matmul = _least_precise(base, _dtype_name(state.get("matmul")) if switches else None, *lowered)
        convolution = _least_precise(base, _dtype_name(state.get("convolution")) if switches else None, *lowered)
        return cls(base, matmul, convolution, lowered)

    @property
    def contraction(self) -> str:
        """For a call that holds both kinds (a module with linear and convolution layers)."""
        return _least_precise(self.matmul, self.convolution)

    @property
    def label(self) -> str:
        """`float32`, or `float32 (matmuls in tf32)`, for a person."""
        parts = []
        if self.matmul != self.base:
            parts.append(f"matmuls in {self.matmul}")
        if self.convolution != self.base and self.convolution != self.matmul:
            parts.append(f"convolutions in {self.convolution}")
        elif self.convolution != self.base and parts:
            parts[-1] = f"matmuls and convolutions in {self.matmul}"
        if self.autocast:
            parts.append(f"autocast to {', '.join(sorted(self.autocast))}")
        return self.base + (f" ({'; '.join(parts)})" if parts else "")
