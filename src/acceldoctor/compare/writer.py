"""The dump's writer: a background thread that turns queued records into records.jsonl lines and tensors.bin bytes.

The recording thread hands over batches of `PendingRecord`s whose statistics and tensor copies may still be on the
device; this thread waits for them (the device transfer happens here, not in the model's thread), encodes and
appends. tensors.bin is flushed before records.jsonl, so a record never points at bytes that were not written.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from acceldoctor.compare.callargs import json_default
from acceldoctor.compare.dump import META_FILE, RECORDS_FILE, TENSORS_FILE
from acceldoctor.compare.stats import PendingStats, materialize

# Records handed over per batch, and batches allowed in flight before the recording thread waits for the writer
# (which bounds the memory that queued tensor copies hold).
BATCH_RECORDS = 256
MAX_QUEUED_BATCHES = 32


class StoredTensor:
    """A copy of a tensor to store; once written, where its bytes are (shared by every record that stores it)."""

    __slots__ = ("tensor", "location")

    def __init__(self, tensor: torch.Tensor):
        self.tensor: torch.Tensor | None = tensor
        self.location: tuple[int, int] | None = None


@dataclass(slots=True)
class PendingRecord:
    key: str
    module: str
    op: str | None
    call: int
    direction: str
    io: str
    index: int
    shape: tuple[int, ...]
    dtype: str
    stats: PendingStats
    seq: int
    step: int
    stored: StoredTensor | None = None
    call_args: Any = None


def write_json_atomically(path: Path, obj: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    os.replace(temporary, path)


class DumpWriter:
    """Appends records to a dump. background=True: in a thread of its own (for a model on an accelerator, where
    reading statistics and tensor copies waits for the device); False: in the recording thread, a batch at a time
    (for a model on the CPU, where nothing is waited for, a second Python thread would only take turns with the
    model's thread for the interpreter lock, and each turn costs more than the writing itself)."""

    def __init__(self, path: Path, background: bool = True):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._records = open(path / RECORDS_FILE, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self._tensors = open(path / TENSORS_FILE, "wb")  # noqa: SIM115
        self._tensor_bytes = 0
        self._batch: list[PendingRecord] = []
        self._queue: queue.Queue[list[PendingRecord] | None] = queue.Queue(maxsize=MAX_QUEUED_BATCHES)
        self.written = 0
        self.error: BaseException | None = None
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._run, name="acceldoctor-dump-writer", daemon=True)
            self._thread.start()

    def write_meta(self, meta: dict[str, Any], atomically: bool = True) -> None:
        if atomically:
            write_json_atomically(self.path / META_FILE, meta)
        else:  # the first write: there is no earlier meta.json to protect (and a rename is slow on some filesystems)
            (self.path / META_FILE).write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")

    def add(self, record: PendingRecord) -> None:
        self._batch.append(record)
        if len(self._batch) >= BATCH_RECORDS:
            self.hand_over()

    def hand_over(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            if self._thread is None:
                self._write(batch)
            else:
                self._queue.put(batch)

    def flush(self) -> None:
        """Hand over the current batch and wait until everything handed over is written."""
        self.hand_over()
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        """Write everything queued, then close the files (the caller then rewrites meta.json)."""
        self.hand_over()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._records.close()
        self._tensors.close()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            self._write(batch)
            self._queue.task_done()
        self._queue.task_done()

    def _write(self, batch: list[PendingRecord]) -> None:
        if self.error is not None:
            return  # after a failure, drop the rest: the recorder reports the error when it closes
        try:
            lines = [self._encode(record) for record in batch]
            self._tensors.flush()
            self._records.write("".join(lines))
            self._records.flush()
            self.written += len(lines)
        except Exception as error:
            self.error = error

    def _store(self, stored: StoredTensor) -> tuple[int, int]:
        if stored.location is None:
            tensor = stored.tensor.cpu().contiguous()  # waits for the device copy here, in this thread
            nbytes = tensor.numel() * tensor.element_size()
            if nbytes:
                self._tensors.write(ctypes.string_at(tensor.data_ptr(), nbytes))
            stored.location = (self._tensor_bytes, nbytes)
            stored.tensor = None  # the bytes are on disk: let the copy go
            self._tensor_bytes += nbytes
        return stored.location

    def _encode(self, record: PendingRecord) -> str:
        # Formatted by hand: this runs for every record, in a thread that shares the interpreter lock with the
        # model's, and costs a third of json.dumps. Strings go through json's own escaping, numbers through repr
        # (JSON-valid for finite floats; the others become strings).
        stats = materialize(record.stats)
        location = None if record.stored is None else self._store(record.stored)
        line = (f'{{"key":{_string(record.key)},"module":{_string(record.module)},'
                f'"op":{"null" if record.op is None else _string(record.op)},"call":{record.call},'
                f'"direction":"{record.direction}","io":"{record.io}","index":{record.index},'
                f'"shape":[{",".join(map(str, record.shape))}],"dtype":"{record.dtype}",'
                f'"stats":{{"min":{_number(stats["min"])},"max":{_number(stats["max"])},'
                f'"mean":{_number(stats["mean"])},"l2":{_number(stats["l2"])},"nan":{stats["nan"]},'
                f'"inf":{stats["inf"]},"checksum":"{stats["checksum"]}",'
                f'"proj":[{",".join(_number(x) for x in stats.get("proj", ()))}]}},'
                f'"seq":{record.seq},"step":{record.step},'
                f'"tensor":{"null" if location is None else f"[{location[0]},{location[1]}]"}')
        if record.call_args is not None:
            line += ',"call_args":' + json.dumps(record.call_args, allow_nan=False, separators=(",", ":"),
                                                 default=json_default)
        return line + "}\n"


_string = json.encoder.encode_basestring_ascii


def _number(value: float | None) -> str:
    if value is None:
        return "null"
    if math.isfinite(value):
        return repr(value)
    return '"nan"' if math.isnan(value) else ('"inf"' if value > 0 else '"-inf"')
