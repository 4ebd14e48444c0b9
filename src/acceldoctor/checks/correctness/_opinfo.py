"""Support for correctness.opinfo_sweep: loading PyTorch's OpInfo database safely, the exclusion list,
and turning an OpInfo sample into its float64 CPU reference (and one-ULP perturbations of it)."""

from __future__ import annotations

import fnmatch
import math
import sys
from functools import cache
from importlib import resources
from typing import Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field
from torch.utils._pytree import tree_flatten, tree_map

from acceldoctor.checks.context import SkipCheck

EXCLUSIONS_SCHEMA = "acceldoctor.opinfo_exclusions/1"


class Exclusion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ops: list[str] = Field(min_length=1, description="Globs over OpInfo names (`name` or `name.variant`).")
    reason: str = Field(min_length=20, description="Why comparing these ops with the float64 reference is unfair.")
    dtypes: list[Literal["float32", "bfloat16", "float16"]] | None = Field(
        None, description="Only in these dtypes (all when absent).")
    devices: list[str] | None = Field(None, description="Only on these device types, e.g. [cpu] (all when absent).")

    def applies(self, op_name: str, dtype: str | None, device_type: str) -> bool:
        if self.devices is not None and device_type not in self.devices:
            return False
        if dtype is None and self.dtypes is not None:
            return False  # a dtype-specific exclusion never removes the whole op
        if dtype is not None and self.dtypes is not None and dtype not in self.dtypes:
            return False
        return any(fnmatch.fnmatchcase(op_name, pattern) for pattern in self.ops)


class ToleranceChoice(BaseModel):
    """Ops judged by another entry of data/tolerances/correctness.opinfo_sweep.yaml than `opinfo_sweep`."""

    model_config = ConfigDict(extra="forbid")

    ops: list[str] = Field(min_length=1)
    tolerance: str = Field(pattern=r"^opinfo_sweep\.")
    reason: str = Field(min_length=20)


class ExclusionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["acceldoctor.opinfo_exclusions/1"] = Field(alias="schema")
    exclusions: list[Exclusion]
    tolerances: list[ToleranceChoice] = Field(default_factory=list)


def parse_exclusions(text: str) -> ExclusionFile:
    return ExclusionFile.model_validate(yaml.safe_load(text))


@cache
def _load() -> ExclusionFile:
    text = resources.files("acceldoctor.data").joinpath("opinfo_exclusions.yaml").read_text(encoding="utf-8")
    try:
        return parse_exclusions(text)
    except Exception as exc:
        raise ValueError(f"data/opinfo_exclusions.yaml is invalid: {exc}") from exc


def exclusion_for(op_name: str, dtype: str | None, device_type: str) -> Exclusion | None:
    return next((e for e in _load().exclusions if e.applies(op_name, dtype, device_type)), None)


def tolerance_key(op_name: str) -> str:
    """The tolerance entry an op is judged by (`opinfo_sweep` unless the data file says otherwise)."""
    for choice in _load().tolerances:
        if any(fnmatch.fnmatchcase(op_name, pattern) for pattern in choice.ops):
            return choice.tolerance
    return "opinfo_sweep"


def load_op_db() -> list:
    """PyTorch's OpInfo list, imported without letting its test harness change this process.

    Importing it parses sys.argv, reseeds the global RNG and freezes torch.backends flags (so that tests
    must use context managers); all three are undone here, since this worker runs other checks too.
    """
    argv, rng = sys.argv, torch.random.get_rng_state()
    frozen = torch.backends.flags_frozen()
    try:
        sys.argv = sys.argv[:1]
        from torch.testing._internal.common_methods_invocations import op_db
    except ImportError as exc:
        raise SkipCheck(f"PyTorch's operator database cannot be imported ({exc}); install acceldoctor[full] "
                        "(it adds expecttest) to run the operator sweep") from exc
    finally:
        sys.argv = argv
        torch.random.set_rng_state(rng)
        if not frozen and torch.backends.flags_frozen():
            torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
    return list(op_db)


def full_name(op) -> str:
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


def leaves(sample) -> list[Any]:
    return tree_flatten((sample.input, sample.args, sample.kwargs))[0]


def to_reference(sample) -> tuple[Any, tuple, dict]:
    """The sample's arguments as CPU copies, floating tensors (and floating dtype arguments) in float64."""

    def convert(x):
        if isinstance(x, torch.Tensor):
            x = x.detach()
            return x.to("cpu", torch.float64, copy=True) if x.is_floating_point() else x.to("cpu", copy=True)
        if isinstance(x, torch.dtype) and x.is_floating_point:
            return torch.float64
        return x

    return tree_map(convert, (sample.input, tuple(sample.args), dict(sample.kwargs)))


def perturbed(reference: tuple, eps: float, gen: torch.Generator) -> tuple:
    """`reference` with every floating input (elements and python floats) times (1 +/- eps), random signs.

    How much the float64 result moves under this perturbation measures how sensitive the op is to one
    rounding of its inputs (ill-conditioning, discontinuities, cancellation): an implementation that is
    exact for inputs within one ULP of the given ones may legitimately differ from the golden by that much.
    """

    def perturb(x):
        if isinstance(x, torch.Tensor) and x.dtype == torch.float64 and x.numel():
            signs = torch.randint(0, 2, x.shape, generator=gen, dtype=torch.float64) * 2 - 1
            return x * (1 + eps * signs)
        if isinstance(x, float):  # scalar arguments (logspace's ends, clamp's bounds) are rounded by ops too
            return x * (1 + eps * (int(torch.randint(0, 2, (), generator=gen)) * 2 - 1))
        return x.clone() if isinstance(x, torch.Tensor) else x

    return tree_map(perturb, reference)


def operand_scale(sample_leaves: list[Any], golden: torch.Tensor) -> float:
    """The largest finite magnitude among the floating operands (tensors and python floats) and the golden.

    An op without floating tensor inputs (a factory: windows, linspace, arange) computes from constants of
    order one, so its scale is at least 1.
    """
    tensors = [x for x in sample_leaves if isinstance(x, torch.Tensor) and x.is_floating_point()]
    scale = max([abs(x) for x in sample_leaves if isinstance(x, float) and math.isfinite(x)] + [0.0])
    if not tensors:
        scale = max(scale, 1.0)
    for t in tensors + [golden]:
        if t.numel():
            mags = t.detach().to("cpu", torch.float64).abs()
            mags = mags[torch.isfinite(mags)]
            if mags.numel():
                scale = max(scale, float(mags.max()))
    return scale


def float_outputs(result) -> list[Any]:
    """The leaves of an op's result (tensors and anything else), in order; sparse tensors made dense."""
    return [x.to_dense() if isinstance(x, torch.Tensor) and x.layout != torch.strided else x
            for x in tree_flatten(result)[0]]
