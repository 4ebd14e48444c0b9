"""Op-level recording: every aten operation the `with` block runs, forward and backward, through a
TorchDispatchMode (so after autograd's decompositions: what each device's kernels actually receive).

Keys: `{module}/{op}#{call}/{direction}/{io}{index}`.
- op: the overload's full name, `aten._softmax.default` (`callargs.resolve_op` gives it back).
- direction: "backward" while autograd's engine runs a node (`torch._C._current_autograd_node()` is not None, on
  whichever thread runs it) or while `torch.autograd.backward`/`torch.autograd.grad` is on the stack (patched for
  the duration of the recording: this catches what backward() does before the engine starts, like making the
  initial gradient of ones); otherwise "forward".
- module, forward: the innermost module whose forward is running (tracked by forward pre/post hooks); `(model)` for
  the model's own forward; `(outside)` for ops outside the model's forward (the loss, the optimizer).
- module, backward: the module whose forward created the autograd node being run. Each module entry and exit
  notes autograd's sequence number (`torch._C._autograd._get_sequence_nr()`), nodes are numbered in creation order,
  so a node's `_sequence_nr()` falls in the span of the module that was innermost when it was created. A
  parameter's gradient accumulation (AccumulateGrad) is attributed to the module owning the parameter. A node
  created before recording started, or any node when this torch lacks the sequence-number API, is
  `(backward)/{node name}`, e.g. `(backward)/MmBackward0`; ops of backward() outside any node are `(backward)`.
- call: counts per (module, op, direction), from 0 since recording began.
- io: `input{i}` (recorded before the op runs, so in-place ops do not falsify it) and `output{i}`; for inputs i
  counts every tensor argument (args then kwargs, lists flattened; None is not a tensor), for outputs i is the
  position in the op's result (lists flattened, None kept: convolution_backward's (None, grad_weight, grad_bias)
  records output1 and output2). An op that returns nothing but writes its arguments (`_foreach_add_`) records
  the written arguments, after the op, as its outputs.

Not recorded: ops whose every output is a view of an input (view, t, transpose, expand, detach...: no new values),
and the uninitialised outputs of empty/empty_like/new_empty (nor such a tensor as an input before it is written —
except under inference_mode, where tensors have no version counter to tell when they are written).
"""

from __future__ import annotations

import bisect
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from acceldoctor.compare.callargs import encode_call
from acceldoctor.compare.record import INTERNAL, OUTSIDE, ROOT, Recorder, collect_tensors

_EMPTY_OPS = {"empty", "empty_like", "empty_strided", "empty_permuted", "new_empty", "new_empty_strided"}
_current_node = getattr(torch._C, "_current_autograd_node", lambda: None)
_sequence_nr = getattr(getattr(torch._C, "_autograd", None), "_get_sequence_nr", None)


@dataclass(frozen=True)
class _OpInfo:
    name: str
    kind: str  # "view": not recorded; "empty": outputs uninitialised; "op"
    written: tuple[tuple[int, str], ...]  # (position, name) of the arguments the op writes


def _describe(func: torch._ops.OpOverload) -> _OpInfo:
    schema = func._schema
    written = tuple((position, argument.name) for position, argument in enumerate(schema.arguments)
                    if argument.alias_info is not None and argument.alias_info.is_write)
    if schema.name.partition("::")[2] in _EMPTY_OPS:
        kind = "empty"
    elif not written and schema.returns and all(r.alias_info is not None for r in schema.returns):
        kind = "view"
    else:
        kind = "op"
    return _OpInfo(str(func), kind, written)


def _returned(value: Any, into: list) -> list:
    """What an op returned, flattened, with None kept in place (convolution_backward returns (None, grad_weight,
    grad_bias) when the input's gradient is not wanted): output{i} is position i of the op's result."""
    if isinstance(value, (list, tuple)):
        for item in value:
            _returned(item, into)
    elif value is None or isinstance(value, torch.Tensor):
        into.append(value)
    return into


class _RecordingMode(TorchDispatchMode):
    def __init__(self, recorder: OpRecorder):
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return self.recorder.on_op(func, args, kwargs or {})


class OpRecorder(Recorder):
    level = "op"

    def _install(self) -> None:
        self._infos: dict[Any, _OpInfo] = {}
        self._calls: dict[tuple[str, str, str], int] = {}
        self._stack: list[str] = []
        self._uninitialised: dict[int, tuple[weakref.ref, int]] = {}
        self._backward_depth = 0
        self._thread = threading.get_ident()
        # Autograd sequence numbers where the innermost module changed, and the module from there on.
        self._span_starts: list[int] = []
        self._span_modules: list[str] = []
        self._note_span(OUTSIDE)
        self._parameter_owner = {id(p): (module_name or ROOT) for module_name, module in self.model.named_modules()
                                 for p in module.parameters(recurse=False)}
        for name, module in self.model.named_modules():
            qualname = name or ROOT
            self._handles.append(module.register_forward_pre_hook(self._enter_hook(qualname, module is self.model)))
            self._handles.append(module.register_forward_hook(self._exit_hook(qualname), always_call=True))
        self._patch_backward()
        self._mode = _RecordingMode(self)
        self._mode.__enter__()

    def _uninstall(self) -> None:
        try:
            if getattr(self, "_mode", None) is not None:
                self._mode.__exit__(None, None, None)
        finally:
            if hasattr(self, "_original_backward"):
                torch.autograd.backward, torch.autograd.grad = self._original_backward, self._original_grad

    # -- where am I: module stack, backward --------------------------------------------------------------------------
    def _enter_hook(self, qualname: str, is_root: bool):
        def hook(module, args) -> None:
            if is_root and self.active:
                self.steps += 1
                self.note_precision()
            self._stack.append(qualname)
            self._note_span(qualname)

        return hook

    def _exit_hook(self, qualname: str):
        def hook(module, args, output) -> None:
            # Pop down to this module: a forward that raised inside a child left the child on the stack.
            while self._stack and self._stack.pop() != qualname:
                pass
            self._note_span(self._stack[-1] if self._stack else OUTSIDE)

        return hook

    def _note_span(self, module: str) -> None:
        # Sequence numbers count per thread: spans are kept for the thread that entered the recording (the forward's).
        if _sequence_nr is None or threading.get_ident() != self._thread:
            return
        start = _sequence_nr()
        if self._span_starts and self._span_starts[-1] == start:
            self._span_modules[-1] = module  # no node was created in the previous span
        else:
            self._span_starts.append(start)
            self._span_modules.append(module)

    def _backward_module(self, node) -> str:
        if node is None:
            return "(backward)"
        name = node.name().rpartition("::")[2]
        if name == "AccumulateGrad":
            owner = self._parameter_owner.get(id(getattr(node, "variable", None)))
            return owner if owner is not None else f"(backward)/{name}"
        position = bisect.bisect_right(self._span_starts, node._sequence_nr()) - 1
        # Before the first span: the node was created before recording began.
        return self._span_modules[position] if position >= 0 else f"(backward)/{name}"

    def _patch_backward(self) -> None:
        self._original_backward, self._original_grad = torch.autograd.backward, torch.autograd.grad

        def counted(function):
            def run(*args, **kwargs):
                self._backward_depth += 1
                try:
                    return function(*args, **kwargs)
                finally:
                    self._backward_depth -= 1

            run.__wrapped__ = function
            run.__doc__ = function.__doc__
            return run

        torch.autograd.backward = counted(self._original_backward)
        torch.autograd.grad = counted(self._original_grad)

    # -- the op ----------------------------------------------------------------------------------------------------
    def on_op(self, func, args: tuple, kwargs: dict) -> Any:
        info = self._infos.get(func)
        if info is None:
            info = self._infos[func] = _describe(func)
        if info.kind == "view" or not self.active or INTERNAL.busy:
            return func(*args, **kwargs)
        if info.kind == "empty":
            out = func(*args, **kwargs)
            for t in collect_tensors(out, []):
                if not t.is_inference():  # (no version counter to tell when it gets written)
                    self._uninitialised[id(t)] = (weakref.ref(t), t._version)
            if len(self._uninitialised) > 1024:  # forget the ones that are gone
                self._uninitialised = {k: v for k, v in self._uninitialised.items() if v[0]() is not None}
            return out
        node = _current_node()
        if node is not None or self._backward_depth:
            direction, module = "backward", self._backward_module(node)
        else:
            direction, module = "forward", self._stack[-1] if self._stack else OUTSIDE
        if self.tensors:
            call_args, inputs = encode_call(args, kwargs)
        else:
            call_args, inputs = None, collect_tensors(kwargs, collect_tensors(args, []))
        with self._lock:
            counter = (module, info.name, direction)
            call = self._calls.get(counter, 0)
            self._calls[counter] = call + 1
            prefix = f"{module}/{info.name}#{call}/{direction}/"
            records = [self.make_record(f"{prefix}input{index}", module, info.name, call, direction, "input", index, t)
                       for index, t in enumerate(inputs) if t.is_floating_point() and not self._is_uninitialised(t)]
        out = func(*args, **kwargs)
        outputs = _returned(out, []) if out is not None else self._written_arguments(info, args, kwargs)
        with self._lock:
            first_output = len(records)
            fresh = bool(info.written)  # outputs that are written arguments: their old statistics are cached
            records += [self.make_record(f"{prefix}output{index}", module, info.name, call, direction, "output",
                                         index, t, fresh) for index, t in enumerate(outputs)
                        if t is not None and t.is_floating_point()]
            if records:
                if call_args is not None:
                    records[first_output if first_output < len(records) else -1].call_args = call_args
                for pending in records:
                    self.add(pending)
        return out

    def _is_uninitialised(self, t: torch.Tensor) -> bool:
        entry = self._uninitialised.get(id(t))
        if entry is None:
            return False
        if entry[0]() is t and entry[1] == t._version:
            return True
        del self._uninitialised[id(t)]
        return False

    @staticmethod
    def _written_arguments(info: _OpInfo, args: tuple, kwargs: dict) -> list[torch.Tensor]:
        written: list[torch.Tensor] = []
        for position, name in info.written:
            collect_tensors(args[position] if position < len(args) else kwargs.get(name), written)
        return written
