"""The dump format written by `acceldoctor.record` and read by `acceldoctor compare`, and its reader.

A dump is a folder:

- `meta.json`: `{"schema": "acceldoctor.dump/1", "level", "tensors", "select", "max_tensor_bytes", "device",
  "created_at", "torch", "acceldoctor", "model", "steps", "complete", "records", "error", "precision",
  "contractions", "parameter_aliases"}`. `precision`: what lowered float32 during the recording (precision.py);
  `contractions`: per module holding matrices or kernels, `[fan_in, fan_out, convolution]` (reduction.py);
  `parameter_aliases`: a tied parameter's other names. All three are optional to a reader. Written when
  recording starts (complete false) and again when it ends (complete true; `records` the count; `error` the first
  line of the exception that left the `with` block, else null). `device` is the model's first parameter's (else
  the first recorded tensor's); `steps` counts calls of the model itself.
- `records.jsonl`: one JSON object per recorded tensor, in execution order (`seq`), with the fields of `Record`.
  Statistics that are not finite are the strings "nan", "inf" and "-inf" (JSON has no NaN); `checksum` is 8 hex
  digits (see stats.py). `tensor` is null or `[offset, nbytes]` into tensors.bin.
- `tensors.bin`: the raw bytes of the stored tensors (contiguous, the CPU's byte order), one after another. Several
  records may point at the same bytes (an op's input that is the previous op's output is stored once).

Keys (unique within a dump, identical between two runs of the same code on any device or dtype):
- module level: `{module}#{call}/{direction}/{io}{index}`, e.g. `blocks.0.fc1#0/forward/output0`,
  `blocks.0.fc1#0/backward/grad_output0`; the root module is `(model)`; each parameter as a step starts:
  `blocks.0.fc1.weight#{step}/forward/parameter0`.
- op level: `{module}/{op}#{call}/{direction}/{io}{index}`, e.g. `blocks.0.attn/aten._softmax.default#0/forward/
  output0`; `call` counts per (module, op, direction).
See record_modules.py and record_ops.py for what `module`, `call`, `direction` and `index` mean at each level (in
short: backward records at module level carry the call of their forward; backward ops are attributed to the module
whose forward created their autograd node, else `(backward)/{node}`; an op's output{i} is position i of its result).
Only floating tensors are recorded; non-floating op arguments live inline in call_args.

Statistics (stats.py) are accumulated in float32 (float64 for float64 tensors); min and max are exact, mean and l2
of the same tensor computed on two devices agree to rounding (reduction order), the checksum to the bit.

`call_args` (op level with tensors=True) is on exactly one record of each op call: the first output record, or
the last input record when the op has no recorded output. `Dump.call_args_of(record)` finds it from any record of
the call; callargs.decode_call turns it back into arguments.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "acceldoctor.dump/1"
META_FILE = "meta.json"
RECORDS_FILE = "records.jsonl"
TENSORS_FILE = "tensors.bin"
# A record line is a few hundred bytes; call_args with inline integer tensors stay well under this.
MAX_LINE_BYTES = 16 * 1024 * 1024

_REQUIRED = ("key", "module", "op", "call", "direction", "io", "index", "shape", "dtype", "stats", "seq", "step",
             "tensor")
_FLOAT_STATS = ("min", "max", "mean", "l2")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class DumpError(Exception):
    """A dump that cannot be read; the message is one line naming the file (and line)."""


def encode_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def decode_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in _NONFINITE:
            raise ValueError(f"not a number: {value!r}")
        return _NONFINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def encode_stats(stats: dict[str, Any]) -> dict[str, Any]:
    return {name: encode_float(value) if name in _FLOAT_STATS else value for name, value in stats.items()}


def decode_stats(stats: Any) -> dict[str, Any]:
    if not isinstance(stats, dict):
        raise ValueError("stats is not an object")
    decoded = {name: decode_float(value) if name in _FLOAT_STATS else value for name, value in stats.items()}
    if isinstance(decoded.get("proj"), list):
        decoded["proj"] = [decode_float(x) for x in decoded["proj"]]
    return decoded


@dataclass(frozen=True)
class Record:
    key: str
    module: str
    op: str | None
    call: int
    direction: str  # "forward" or "backward"
    io: str  # "input"/"output"; module-level backward: "grad_output"/"grad_input"
    index: int
    shape: tuple[int, ...]
    dtype: str  # torch's name without "torch.": "float32", "bfloat16"
    stats: dict[str, Any]
    seq: int
    step: int
    tensor: tuple[int, int] | None  # (offset, nbytes) in tensors.bin
    call_args: Any | None = None

    @property
    def call_id(self) -> tuple[str, str | None, int, str]:
        """What identifies the call this record belongs to."""
        return self.module, self.op, self.call, self.direction


def _record_from_json(obj: Any) -> Record:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in _REQUIRED if name not in obj]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    tensor = obj["tensor"]
    if tensor is not None:
        if not (isinstance(tensor, list) and len(tensor) == 2 and all(isinstance(v, int) and v >= 0 for v in tensor)):
            raise ValueError("tensor is not [offset, nbytes]")
        tensor = (tensor[0], tensor[1])
    shape = obj["shape"]
    if not (isinstance(shape, list) and all(isinstance(v, int) and v >= 0 for v in shape)):
        raise ValueError("shape is not a list of sizes")
    for name in ("call", "index", "seq", "step"):
        if not isinstance(obj[name], int):
            raise ValueError(f"{name} is not an integer")
    for name in ("key", "module", "direction", "io", "dtype"):
        if not isinstance(obj[name], str):
            raise ValueError(f"{name} is not a string")
    return Record(key=obj["key"], module=obj["module"], op=obj["op"], call=obj["call"], direction=obj["direction"],
                  io=obj["io"], index=obj["index"], shape=tuple(shape), dtype=obj["dtype"],
                  stats=decode_stats(obj["stats"]), seq=obj["seq"], step=obj["step"], tensor=tensor,
                  call_args=obj.get("call_args"))


def record_to_json(record: Record) -> str:
    """One records.jsonl line (without the newline)."""
    obj = {"key": record.key, "module": record.module, "op": record.op, "call": record.call,
           "direction": record.direction, "io": record.io, "index": record.index, "shape": list(record.shape),
           "dtype": record.dtype, "stats": encode_stats(record.stats), "seq": record.seq, "step": record.step,
           "tensor": None if record.tensor is None else list(record.tensor)}
    if record.call_args is not None:
        obj["call_args"] = record.call_args
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


class Dump:
    """A dump loaded into memory (records and meta; tensors are read from tensors.bin on demand)."""

    def __init__(self, path: Path, meta: dict[str, Any], records: list[Record], warnings: list[str]):
        self.path = path
        self.meta = meta
        self.records = records
        self.warnings = warnings  # e.g. the half-written last line of a killed run, left out
        self._by_key: dict[str, Record] | None = None
        self._calls: dict[tuple, list[Record]] | None = None
        self._parameters: dict[int, list[Record]] | None = None
        self._aliases: dict[str, list] = {}

    def __repr__(self) -> str:
        return f"Dump({str(self.path)!r}, level={self.meta.get('level')!r}, records={len(self.records)})"

    def by_key(self) -> dict[str, Record]:
        if self._by_key is None:
            self._by_key = {record.key: record for record in self.records}
        return self._by_key

    def records_of_call(self, record: Record) -> list[Record]:
        """Every record of the call `record` belongs to (same module, op, call and direction), in seq order."""
        if self._calls is None:
            self._calls = {}
            for each in self.records:
                self._calls.setdefault(each.call_id, []).append(each)
        return self._calls.get(record.call_id, [])

    def inputs_of(self, record: Record) -> list[Record]:
        """The input records of the same call, by index: io "input" (forward, and op-level backward) or, for a
        module's backward, "grad_output" (what the backward pass of that module starts from)."""
        io = "grad_output" if record.op is None and record.direction == "backward" else "input"
        return sorted((r for r in self.records_of_call(record) if r.io == io), key=lambda r: r.index)

    def parameters_of(self, record: Record) -> list[Record]:
        """The parameters (module level) the module of `record` and its children held at the record's step, tied
        ones under any of their names."""
        if record.module == "(model)":
            return self.parameters_at(record.step)
        prefix = record.module + "."
        return [r for r in self.parameters_at(record.step)
                if any(str(name).startswith(prefix) for name in self._aliases.get(r.module, (r.module,)))]

    def parameters_at(self, step: int) -> list[Record]:
        """Every parameter record (module level) of a step."""
        if self._parameters is None:
            self._parameters = {}
            for each in self.records:
                if each.io == "parameter":
                    self._parameters.setdefault(each.step, []).append(each)
            aliases = self.meta.get("parameter_aliases")
            self._aliases = {name: [name, *(others if isinstance(others, list) else [])]
                             for name, others in (aliases.items() if isinstance(aliases, dict) else ())}
        return self._parameters.get(step, [])

    def outputs_of(self, record: Record) -> list[Record]:
        io = "grad_input" if record.op is None and record.direction == "backward" else "output"
        return sorted((r for r in self.records_of_call(record) if r.io == io), key=lambda r: r.index)

    def call_args_of(self, record: Record) -> Any | None:
        """The encoded arguments of the op call `record` belongs to (None at module level or without tensors)."""
        return next((r.call_args for r in self.records_of_call(record) if r.call_args is not None), None)

    def tensor(self, record: Record):
        """The stored tensor of a record, on the CPU, or None when it was not stored."""
        if record.tensor is None:
            return None
        import torch

        dtype = getattr(torch, record.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise DumpError(f"{self.path / RECORDS_FILE}: record {record.key}: unknown dtype {record.dtype!r}")
        offset, nbytes = record.tensor
        expected = math.prod(record.shape) * dtype.itemsize
        if nbytes != expected:
            raise DumpError(f"{self.path / RECORDS_FILE}: record {record.key}: {nbytes} stored bytes, but shape "
                            f"{list(record.shape)} of {record.dtype} needs {expected}")
        if nbytes == 0:
            return torch.empty(record.shape, dtype=dtype)
        with open(self.path / TENSORS_FILE, "rb") as store:
            store.seek(offset)
            data = store.read(nbytes)
        if len(data) != nbytes:
            raise DumpError(f"{self.path / TENSORS_FILE}: truncated: record {record.key} needs bytes "
                            f"{offset}..{offset + nbytes}")
        return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype).reshape(record.shape)


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise DumpError(f"{path}: no {META_FILE}: not an acceldoctor dump")
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DumpError(f"{meta_path}: not valid JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(meta, dict) or "schema" not in meta:
        raise DumpError(f"{meta_path}: not an acceldoctor dump (no schema)")
    if meta["schema"] != SCHEMA:
        raise DumpError(f"{meta_path}: schema {meta['schema']!r} is not {SCHEMA!r}")
    return meta


def _read_records(path: Path, complete: bool) -> tuple[list[Record], list[str]]:
    records_path = path / RECORDS_FILE
    if not records_path.is_file():
        raise DumpError(f"{path}: no {RECORDS_FILE}")
    records: list[Record] = []
    warnings: list[str] = []
    with open(records_path, "rb") as lines:
        number = 0
        while True:
            line = lines.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            number += 1
            if len(line) > MAX_LINE_BYTES:
                raise DumpError(f"{records_path}: line {number} is longer than {MAX_LINE_BYTES} bytes")
            if not line.strip():
                continue
            try:
                records.append(_record_from_json(json.loads(line.decode("utf-8"))))
            except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
                # A run killed mid-write leaves a half line at the end: tolerated only in a dump whose recording
                # never finished, and only as its last, unterminated line.
                if not complete and not line.endswith(b"\n") and not lines.read(1):
                    warnings.append(f"{records_path}: line {number} is incomplete (the run did not finish); left out")
                    break
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise DumpError(f"{records_path}: line {number} is corrupt ({reason[:200]})") from None
    return records, warnings


def _check_tensor_store(path: Path, records: list[Record]) -> None:
    stored = [r for r in records if r.tensor is not None]
    if not stored:
        return
    store = path / TENSORS_FILE
    size = os.path.getsize(store) if store.is_file() else None
    if size is None:
        raise DumpError(f"{path}: no {TENSORS_FILE}, but {len(stored)} records point into it")
    for record in stored:
        offset, nbytes = record.tensor
        if offset + nbytes > size:
            raise DumpError(f"{store}: truncated: {size} bytes, record {record.key} (seq {record.seq}) needs "
                            f"{offset + nbytes}")


def load_dump(path: str | os.PathLike) -> Dump:
    """Read a dump folder; raises DumpError (one line) for anything that is not a readable dump."""
    path = Path(path)
    if not path.exists():
        raise DumpError(f"{path}: no such dump folder")
    if not path.is_dir():
        raise DumpError(f"{path}: not a folder (a dump is a folder with {META_FILE} and {RECORDS_FILE})")
    try:
        meta = _read_meta(path)
        records, warnings = _read_records(path, complete=bool(meta.get("complete", True)))
        _check_tensor_store(path, records)
    except OSError as error:
        raise DumpError(f"{path}: cannot read: {error.strerror or error}") from None
    return Dump(path, meta, records, warnings)
