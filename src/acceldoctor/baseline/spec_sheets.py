"""Load and validate data/spec_sheets.yaml: vendor peak figures per accelerator model, matched by device name.

Each model lists case-insensitive regular expressions searched in the device name torch reports, example names
that must look up to it (and to no other model), dense peak TFLOP/s per dtype (int8 in TOPS), memory bandwidth
and host link bandwidth per direction in GB/s, and the vendor document the figures come from. A figure that is
not known is absent, never guessed; `efficiency()` then answers None.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

SPEC_SHEETS_SCHEMA = "acceldoctor.spec_sheets/1"

Dtype = Literal["float32", "tf32", "bfloat16", "float16", "int8", "fp8"]
DTYPES: tuple[str, ...] = ("float32", "tf32", "bfloat16", "float16", "fp8", "int8")
MetricKind = Literal["tflops", "memory_bandwidth", "host_link", "chip_link"]

# Other spellings of the dtype keys (torch dtype names, short forms).
_DTYPE_ALIASES: dict[str, str] = {
    "fp32": "float32", "float": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16",
    "float8_e4m3fn": "fp8", "float8_e5m2": "fp8", "float8_e4m3fnuz": "fp8", "float8_e5m2fnuz": "fp8",
}


class SpecSheetDataError(ValueError):
    pass


class SpecSheet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=2, description="The model's name as the vendor writes it.")
    vendor: str = Field(min_length=2)
    patterns: list[str] = Field(
        min_length=1, description="Case-insensitive regular expressions searched in torch's device name.")
    examples: list[str] = Field(
        min_length=1, description="Device names torch reports for this model; each must match this model only.")
    memory_bytes: int | None = Field(default=None, gt=0, description="Marketed memory capacity in bytes.")
    peak_tflops: dict[Dtype, float] = Field(
        default_factory=dict, description="Dense peak TFLOP/s per dtype (int8: TOPS).")
    memory_bandwidth_gbs: float | None = Field(default=None, gt=0, description="Peak memory bandwidth, GB/s.")
    host_link: str | None = Field(default=None, description="The host link, e.g. 'PCIe Gen5 x16'.")
    host_link_gbs: float | None = Field(default=None, gt=0, description="Host link bandwidth per direction, GB/s.")
    chip_link: str | None = Field(default=None, description="The chip-to-chip link, e.g. 'NVLink 4 (18 links)'.")
    chip_link_gbs: float | None = Field(
        default=None, gt=0, description="Chip-to-chip bandwidth of one device per direction, all links together, GB/s.")
    source: str = Field(min_length=10, description="The vendor datasheet: a public URL or a document title.")
    note: str | None = Field(default=None, min_length=10, description="Caveats, and why a figure is left out.")

    _compiled: tuple[re.Pattern[str], ...] = PrivateAttr(default=())

    @field_validator("peak_tflops")
    @classmethod
    def _positive_peaks(cls, value: dict[str, float]) -> dict[str, float]:
        for dtype, peak in value.items():
            if not peak > 0:
                raise ValueError(f"peak for {dtype} must be positive, got {peak}")
        return value

    @model_validator(mode="after")
    def _compile_patterns(self) -> SpecSheet:
        compiled = []
        for pattern in self.patterns:
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from exc
        self._compiled = tuple(compiled)
        for example in self.examples:
            if not self.matches(example):
                raise ValueError(f"example {example!r} matches none of its patterns")
        return self

    def matches(self, device_name: str) -> bool:
        return any(p.search(device_name) for p in self._compiled)

    def peak(self, metric_kind: MetricKind, dtype: str | None = None) -> float | None:
        """The peak figure for a metric kind (and dtype, for "tflops"); None when unknown."""
        if metric_kind == "tflops":
            key = normalize_dtype(dtype) if dtype is not None else None
            return self.peak_tflops.get(key) if key is not None else None
        if metric_kind == "memory_bandwidth":
            return self.memory_bandwidth_gbs
        if metric_kind == "host_link":
            return self.host_link_gbs
        if metric_kind == "chip_link":
            return self.chip_link_gbs
        raise ValueError(f"unknown metric kind {metric_kind!r}; expected tflops, memory_bandwidth, host_link or "
                         "chip_link")

    def efficiency(self, metric_kind: MetricKind, dtype: str | None, value: float) -> float | None:
        """measured / peak (TFLOP/s or TOPS for "tflops", GB/s otherwise); None when the peak is unknown."""
        peak = self.peak(metric_kind, dtype)
        if peak is None:
            return None
        return float(value) / peak


class SpecSheetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["acceldoctor.spec_sheets/1"] = Field(alias="schema")
    models: list[SpecSheet] = Field(min_length=1)

    @model_validator(mode="after")
    def _unambiguous(self) -> SpecSheetFile:
        seen: set[str] = set()
        for sheet in self.models:
            if sheet.model in seen:
                raise ValueError(f"model {sheet.model!r} is listed twice")
            seen.add(sheet.model)
        for sheet in self.models:
            for example in sheet.examples:
                matching = [other.model for other in self.models if other.matches(example)]
                if len(matching) > 1:
                    raise ValueError(
                        f"model {sheet.model!r}: example {example!r} is matched by the patterns of "
                        + " and ".join(repr(m) for m in matching))
        return self


def normalize_dtype(dtype: str) -> str:
    """'torch.bfloat16', 'bf16' and 'bfloat16' all become 'bfloat16'; unknown names come back lowercased."""
    name = str(dtype).strip().lower().removeprefix("torch.")
    return _DTYPE_ALIASES.get(name, name)


def parse_spec_sheets(text: str) -> SpecSheetFile:
    return SpecSheetFile.model_validate(yaml.safe_load(text))


def _describe(exc: ValidationError, raw: object) -> str:
    """The validation errors, each located by model name rather than list index where the data allows."""
    models = raw.get("models") if isinstance(raw, dict) else None
    parts = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ".".join(str(part) for part in loc) or "file"
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int) and isinstance(models, list):
            entry = models[loc[1]] if loc[1] < len(models) else None
            name = entry.get("model") if isinstance(entry, dict) else None
            rest = ".".join(str(part) for part in loc[2:])
            where = f"model {name!r}" + (f", {rest}" if rest else "") if name else where
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(message if where == "file" else f"{where}: {message}")
    return "; ".join(parts)


def _read(text: str, label: str) -> tuple[SpecSheet, ...]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecSheetDataError(f"{label} is not valid YAML: {exc}") from exc
    try:
        return tuple(SpecSheetFile.model_validate(raw).models)
    except ValidationError as exc:
        raise SpecSheetDataError(f"{label} is invalid: {_describe(exc, raw)}") from exc


@cache
def _packaged() -> tuple[SpecSheet, ...]:
    text = resources.files("acceldoctor.data").joinpath("spec_sheets.yaml").read_text(encoding="utf-8")
    return _read(text, "data/spec_sheets.yaml")


def load_spec_sheets(path: Path | None = None) -> tuple[SpecSheet, ...]:
    """Every model of data/spec_sheets.yaml (or of `path`), validated, in file order (the lookup order).

    Raises SpecSheetDataError naming the file and the model when the data is invalid.
    """
    if path is None:
        return _packaged()
    return _read(Path(path).read_text(encoding="utf-8"), str(path))


def lookup(device_name: str, path: Path | None = None) -> SpecSheet | None:
    """The first model whose pattern matches the device name torch reports; None for "cpu" or unknown names."""
    name = (device_name or "").strip()
    if not name:
        return None
    for sheet in load_spec_sheets(path):
        if sheet.matches(name):
            return sheet
    return None


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def spec_sheets_markdown(path: Path | None = None) -> str:
    """The spec sheets as Markdown: one table of models × figures, then each model's source and notes."""
    sheets = load_spec_sheets(path)
    head = ["Model", "Vendor", "Memory (GiB)", *DTYPES, "Memory BW (GB/s)", "Host link (GB/s per direction)",
            "Chip-to-chip (GB/s per direction)"]
    lines = [
        "Dense (no sparsity) vendor peaks, in TFLOP/s (int8: TOPS); – where the figure is unknown or the dtype "
        "unsupported. A device is matched to a model by the name torch reports.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|",
    ]
    for s in sheets:
        memory = None if s.memory_bytes is None else s.memory_bytes / 2**30
        link = _fmt(s.host_link_gbs) + (f" ({s.host_link})" if s.host_link and s.host_link_gbs else "")
        chips = _fmt(s.chip_link_gbs) + (f" ({s.chip_link})" if s.chip_link and s.chip_link_gbs else "")
        row = [s.model, s.vendor, _fmt(memory), *(_fmt(s.peak_tflops.get(d)) for d in DTYPES),
               _fmt(s.memory_bandwidth_gbs), link, chips]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines += ["", "Sources and notes:", ""]
    for s in sheets:
        names = ", ".join(f"`{e}`" for e in s.examples)
        line = f"- **{s.model}** (device names such as {names}): {s.source}."
        if s.note:
            line += f" {s.note}"
        lines.append(line)
    return "\n".join(lines) + "\n"
