"""Load and validate data/tolerances/*.yaml; compute the per-element error bound they describe.

One file per check, named `<check id>.yaml`: an optional `about` (what K and the magnitude mean for the check's
ops, and the general reasoning) and one entry per operation (multiples, growth, the op's `magnitude` in words,
and `why`). An operation name appears in one file only. docs/checks/ renders all of it.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TOLERANCES_SCHEMA = "acceldoctor.tolerances/1"

Growth = Literal["none", "sqrt", "log", "linear"]

# growth(K) as written in the docs, and what each choice models.
GROWTH_FORMULAS: dict[str, str] = {"none": "1", "sqrt": "sqrt(K)", "log": "log2(K)+1", "linear": "K"}
GROWTH_MEANING: dict[str, str] = {
    "none": "no reduction",
    "sqrt": "the expected growth of random rounding errors",
    "log": "pairwise or tree reductions",
    "linear": "the worst case",
}


class Tolerance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: float = Field(ge=0, description="Multiples of eps * |golden| allowed for rounding the output.")
    accumulation: float = Field(ge=0, description="Multiples of eps * growth(K) * magnitude.")
    growth: Growth = "none"
    magnitude: str | None = Field(
        default=None, min_length=3,
        description="The op's error scale, in words or as a formula (default: |golden|). Markdown.")
    why: str = Field(min_length=10, description="Why this tolerance is right for the op. Markdown.")

    def growth_factor(self, reduction_length: int) -> float:
        k = max(int(reduction_length), 1)
        return {"none": 1.0, "sqrt": math.sqrt(k), "log": math.log2(k) + 1.0, "linear": float(k)}[self.growth]

    def formula(self) -> str:
        growth = GROWTH_FORMULAS[self.growth]
        growth = f"({growth})" if "+" in growth else growth
        return (
            f"|actual - golden| <= eps * ({self.output:g} * |golden| + "
            f"{self.accumulation:g} * {growth} * magnitude) + tiny"
        )


class ToleranceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["acceldoctor.tolerances/1"] = Field(alias="schema")
    about: str | None = Field(
        default=None, min_length=20,
        description="What K and the magnitude mean for this check's ops, and the general reasoning. Markdown.")
    tolerances: dict[str, Tolerance]


def formula_legend() -> str:
    """The general tolerance formula and its terms, in Markdown (the head of every page's Tolerances section)."""
    growths = ", ".join(f"`{name}` ({GROWTH_FORMULAS[name]}, {GROWTH_MEANING[name]})" for name in GROWTH_FORMULAS)
    return (
        "An element computed in a dtype with machine epsilon `eps` passes when "
        "`|actual - golden| <= eps * (output * |golden| + accumulation * growth(K) * magnitude) + tiny`, "
        "where `golden` is the float64 CPU result, `K` the reduction length, `magnitude` the op's natural error "
        "scale (by default |golden|; ops whose result can cancel use a scale built from absolute values, so "
        "that cancellation is not punished), `growth` one of " + growths + ", and `tiny` four steps of the "
        "dtype's smallest subnormal number (rounding into the subnormal range costs half a step, vectorized "
        "exp/log a step or two more), so a result flushed to zero where it should be subnormal fails."
    )


class ToleranceDataError(ValueError):
    pass


def parse_tolerances(text: str) -> ToleranceFile:
    return ToleranceFile.model_validate(yaml.safe_load(text))


def _packaged_folder() -> Traversable:
    return resources.files("acceldoctor.data").joinpath("tolerances")


def _read_folder(folder: Traversable | Path, label: str) -> dict[str, ToleranceFile]:
    files: dict[str, ToleranceFile] = {}
    origin: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        where = f"{label}/{entry.name}"
        try:
            parsed = parse_tolerances(entry.read_text(encoding="utf-8"))
        except Exception as exc:
            raise ToleranceDataError(f"{where} is invalid: {exc}") from exc
        for op in parsed.tolerances:
            if op in origin:
                raise ToleranceDataError(f"tolerance {op!r} is defined in both {origin[op]} and {where}")
            origin[op] = where
        files[entry.name.removesuffix(".yaml")] = parsed
    return files


@cache
def _packaged_files() -> dict[str, ToleranceFile]:
    return _read_folder(_packaged_folder(), "data/tolerances")


@cache
def _packaged_tolerances() -> dict[str, Tolerance]:
    return _merge(_packaged_files())


def _merge(files: dict[str, ToleranceFile]) -> dict[str, Tolerance]:
    return {op: tol for parsed in files.values() for op, tol in parsed.tolerances.items()}


def load_tolerance_files(folder: Path | None = None) -> dict[str, ToleranceFile]:
    """Every file of data/tolerances/ (or of `folder`), validated, by check id (the file name without .yaml).

    Raises ToleranceDataError naming the file when one is invalid or repeats another file's operation.
    """
    if folder is None:
        return _packaged_files()
    return _read_folder(Path(folder), str(folder))


def load_tolerances(folder: Path | None = None) -> dict[str, Tolerance]:
    """Every tolerance entry of every file in data/tolerances/ (or `folder`), by operation name."""
    if folder is None:
        return _packaged_tolerances()
    return _merge(load_tolerance_files(folder))


def tolerance(op: str) -> Tolerance:
    try:
        return load_tolerances()[op]
    except KeyError:
        raise KeyError(f"no tolerance for {op!r} in data/tolerances/") from None


def tolerance_about(check_id: str) -> str | None:
    """The `about` text of data/tolerances/<check_id>.yaml; None when the file has none or does not exist."""
    parsed = load_tolerance_files().get(check_id)
    return parsed.about if parsed is not None else None
