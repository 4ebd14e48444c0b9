"""`acceldoctor.record(model, path)`: record what a model computes, module by module or op by op, into a dump.

    with acceldoctor.record(model, "dumps/run_a", level="module"):
        loss = model(x).pow(2).mean()
        loss.backward()

Everything the `with` block runs is recorded — forward and backward, any number of steps — as one record per
floating tensor: a key, its shape and dtype and statistics (see stats.py), and with `tensors=True` the tensor itself
(only for keys matching `select`, an fnmatch glob or a list of them, and only tensors of at most
`max_tensor_bytes`). See dump.py for the format, record_modules.py and record_ops.py for the two levels.

Statistics are computed on the tensor's device without waiting for it. For a model on an accelerator a background
thread moves them (and tensor copies) to the CPU and writes; for a model on the CPU, where there is nothing to wait
for, records are written in batches by the recording thread itself (see writer.py).

A tensor recorded twice unchanged (a module's output that is the next module's input, an op's input that is the
previous op's output) has its statistics computed — and its bytes stored — once: a tensor is "the same" while it
is the same Python object at the same version counter (in-place changes bump the counter).
"""

from __future__ import annotations

import datetime
import fnmatch
import re
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from acceldoctor.compare.dump import SCHEMA
from acceldoctor.compare.precision import merge_precision, precision_state
from acceldoctor.compare.reduction import module_contractions
from acceldoctor.compare.stats import queue_stats
from acceldoctor.compare.writer import DumpWriter, PendingRecord, StoredTensor

LEVELS = ("module", "op")
ROOT = "(model)"  # the qualified name of the recorded model itself
OUTSIDE = "(outside)"  # ops run inside the `with` block but outside the model's forward (the loss, the optimizer)
# The identity cache is pruned of dead tensors when it grows past this, then past twice what survived.
_SEEN_PRUNE_AT = 4096


class _Internal(threading.local):
    """Set while acceldoctor computes statistics in a hook: an op-level recording running at the same time (one
    recorder per level on the same model) leaves those operations out."""

    busy = False


INTERNAL = _Internal()


def _dtype_name(dtype: torch.dtype, _names: dict[torch.dtype, str] = {}) -> str:  # noqa: B006 (a cache)
    name = _names.get(dtype)
    if name is None:
        name = _names[dtype] = str(dtype).removeprefix("torch.")
    return name


def collect_tensors(value: Any, into: list[torch.Tensor]) -> list[torch.Tensor]:
    """Tensors in value, in order: lists and tuples in order, dicts by their values (an index counts them all)."""
    if isinstance(value, torch.Tensor):
        into.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            collect_tensors(item, into)
    elif isinstance(value, dict):
        for item in value.values():
            collect_tensors(item, into)
    return into


def _parameter_aliases(model: torch.nn.Module) -> dict[str, list[str]]:
    """Tied parameters: for each one named_parameters() lists once, its other names (a decoder sharing its
    encoder's embedding), so that every module holding it counts it among what it computes from."""
    first: dict[int, str] = {}
    aliases: dict[str, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in first:
            aliases.setdefault(first[id(parameter)], []).append(name)
        else:
            first[id(parameter)] = name
    return aliases


def _select_matcher(select: str | Iterable[str] | None):
    if select is None:
        return None
    patterns = [select] if isinstance(select, str) else list(select)
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match


class Recorder:
    """The context manager `record` returns (entered once): one dump folder, one writer. Subclasses install the
    hooks."""

    level: str

    def __init__(self, model: torch.nn.Module, path: str | Path, *, tensors: bool = False,
                 select: str | Iterable[str] | None = None, max_tensor_bytes: int | None = None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"record() needs a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.path = Path(path)
        self.tensors = tensors
        self.select = select
        self.max_tensor_bytes = max_tensor_bytes
        self._selected = _select_matcher(select)
        self.steps = 0  # calls of the model itself: a training step is one
        self.active = False
        self._writer: DumpWriter | None = None
        self._lock = threading.Lock()  # backward hooks and ops may run on autograd's device threads
        self._seq = 0
        self._seen: dict[int, list] = {}
        self._prune_at = _SEEN_PRUNE_AT
        self._device: str | None = None
        self._created_at = ""
        self._handles: list[Any] = []
        self._precision: dict[str, Any] = {}

    # -- context manager -------------------------------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        if self._writer is not None:
            raise RuntimeError("a recording is entered once: call acceldoctor.record(...) again for another")
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} exists and is not a folder: a dump is written into a folder")
        first = next(iter(self.model.parameters()), None)
        if first is None:
            first = next(iter(self.model.buffers()), None)
        self._device = str(first.device) if first is not None else None
        self._contractions = module_contractions(self.model, ROOT)
        self._parameter_aliases = _parameter_aliases(self.model)
        self.note_precision()
        self._writer = DumpWriter(self.path, background=first is not None and first.device.type != "cpu")
        self._created_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._writer.write_meta(self._meta(complete=False, error=None), atomically=False)
        self.active = True
        try:
            self._install()
        except BaseException:
            self._finish(error=None)
            raise
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        first_line = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
        self._finish(error=None if exc is None else f"{type(exc).__name__}: {first_line}"[:500])
        return False

    def _finish(self, error: str | None) -> None:
        if not self.active:
            return
        self.active = False
        try:
            self._uninstall()
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles.clear()
            self._seen.clear()
            self._writer.close()
            self._writer.write_meta(self._meta(complete=True, error=error))
        if self._writer.error is not None and error is None:
            raise RuntimeError(f"recording into {self.path} failed: {self._writer.error}") from self._writer.error

    def flush(self) -> None:
        """Write out every record so far (the dump is then readable while recording goes on)."""
        if self.active:
            with self._lock:
                self._writer.flush()

    def _meta(self, complete: bool, error: str | None) -> dict[str, Any]:
        from acceldoctor import __version__

        return {"schema": SCHEMA, "level": self.level, "tensors": self.tensors,
                "select": [self.select] if isinstance(self.select, str) else (
                    None if self.select is None else list(self.select)),
                "max_tensor_bytes": self.max_tensor_bytes, "device": self._device, "created_at": self._created_at,
                "torch": torch.__version__, "acceldoctor": __version__, "model": type(self.model).__name__,
                "steps": self.steps, "complete": complete, "records": self._writer.written if complete else None,
                "error": error, "precision": self._precision, "contractions": self._contractions,
                "parameter_aliases": self._parameter_aliases}

    def note_precision(self) -> None:
        """Take note of autocast and TF32 as they are now (at the start and at every call of the model)."""
        device_type = self._device.split(":")[0] if self._device else "cpu"
        self._precision = merge_precision(self._precision, precision_state(device_type))

    def _install(self) -> None:
        raise NotImplementedError

    def _uninstall(self) -> None:
        pass

    # -- records ---------------------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return max(self.steps - 1, 0)

    def make_record(self, key: str, module: str, op: str | None, call: int, direction: str, io: str, index: int,
                    t: torch.Tensor, fresh: bool = False, store_unselected: bool = True) -> PendingRecord:
        """A record of floating tensor t, its statistics queued (call under no_grad, or below autograd).

        fresh: t was just written in place where its version counter is not bumped yet (below autograd, the
        counter moves after the op returns), so the cached statistics of its previous value must not be reused.
        store_unselected: with tensors=True and no `select`, store t too (parameters are stored only when a
        `select` names them: every weight at every step would dwarf the rest).
        """
        if t.is_inference():  # no version counter to tell an in-place change by: never reuse
            fresh, version = True, -1
        else:
            version = t._version
        entry = self._seen.get(id(t))
        if fresh or entry is None or entry[0]() is not t or entry[1] != version:
            entry = [weakref.ref(t), version, queue_stats(t), None, None]  # ..., stored copy, gradient hook
            self._seen[id(t)] = entry
            if len(self._seen) > self._prune_at:
                self._prune_seen()
        stored = None
        selected = store_unselected if self._selected is None else self._selected(key)
        if self.tensors and selected and (
                self.max_tensor_bytes is None or t.numel() * t.element_size() <= self.max_tensor_bytes):
            stored = entry[3]
            if stored is None:
                stored = entry[3] = StoredTensor(t.detach().clone(memory_format=torch.contiguous_format))
        if self._device is None:
            self._device = str(t.device)
        self._seq += 1
        return PendingRecord(key, module, op, call, direction, io, index, t.shape, _dtype_name(t.dtype), entry[2],
                             self._seq - 1, self.step, stored)

    def add(self, record: PendingRecord) -> None:
        self._writer.add(record)

    def _prune_seen(self) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v[0]() is not None}
        self._prune_at = max(_SEEN_PRUNE_AT, 2 * len(self._seen))


def record(model: torch.nn.Module, path: str | Path, level: str = "module", tensors: bool = False,
           select: str | Iterable[str] | None = None, max_tensor_bytes: int | None = None) -> Recorder:
    """Record `model` while the `with` block runs into the dump folder `path` (created; its dump files replaced).

    level: "module" (every module call: inputs, outputs, gradients) or "op" (every aten operation, attributed to
    the innermost module running it). tensors: also store the tensors (CPU copies), for keys matching `select`
    and at most `max_tensor_bytes` each; at op level this also keeps each call's arguments for replay.
    """
    if level == "module":
        from acceldoctor.compare.record_modules import ModuleRecorder as chosen
    elif level == "op":
        from acceldoctor.compare.record_ops import OpRecorder as chosen
    else:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if max_tensor_bytes is not None and max_tensor_bytes < 0:
        raise ValueError("max_tensor_bytes must be at least 0")
    return chosen(model, path, tensors=tensors, select=select, max_tensor_bytes=max_tensor_bytes)


