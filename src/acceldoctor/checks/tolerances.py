"""Load and validate data/tolerances/*.yaml; compute the per-element error bound they describe."""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

TOLERANCES_SCHEMA = "acceldoctor.tolerances/1"


class Tolerance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: float = Field(ge=0, description="Multiples of eps * |golden| allowed for rounding the output.")
    accumulation: float = Field(ge=0, description="Multiples of eps * growth(K) * magnitude.")
    growth: Literal["none", "sqrt", "log", "linear"] = "none"
    why: str = Field(min_length=10, description="Why this tolerance is right for the op.")

    def growth_factor(self, reduction_length: int) -> float:
        k = max(int(reduction_length), 1)
        return {"none": 1.0, "sqrt": math.sqrt(k), "log": math.log2(k) + 1.0, "linear": float(k)}[self.growth]

    def formula(self) -> str:
        growth = {"none": "1", "sqrt": "sqrt(K)", "log": "log2(K)+1", "linear": "K"}[self.growth]
        return (
            f"|actual - golden| <= eps * ({self.output:g} * |golden| + "
            f"{self.accumulation:g} * {growth} * magnitude) + tiny"
        )


class ToleranceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["acceldoctor.tolerances/1"] = Field(alias="schema")
    tolerances: dict[str, Tolerance]


def parse_tolerances(text: str) -> ToleranceFile:
    return ToleranceFile.model_validate(yaml.safe_load(text))


class ToleranceDataError(ValueError):
    pass


@cache
def load_tolerances() -> dict[str, Tolerance]:
    """Every tolerance entry of every file in data/tolerances/ (one file per check)."""
    merged: dict[str, Tolerance] = {}
    origin: dict[str, str] = {}
    folder = resources.files("acceldoctor.data").joinpath("tolerances")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            parsed = parse_tolerances(entry.read_text(encoding="utf-8"))
        except Exception as exc:
            raise ToleranceDataError(f"data/tolerances/{entry.name} is invalid: {exc}") from exc
        for op, tol in parsed.tolerances.items():
            if op in merged:
                raise ToleranceDataError(f"tolerance {op!r} defined in both {origin[op]} and {entry.name}")
            merged[op], origin[op] = tol, entry.name
    return merged


def tolerance(op: str) -> Tolerance:
    try:
        return load_tolerances()[op]
    except KeyError:
        raise KeyError(f"no tolerance for {op!r} in data/tolerances/") from None
