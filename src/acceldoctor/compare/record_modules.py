"""Module-level recording: every call of every module of the model, forward and backward.

Keys: `{module}#{call}/{direction}/{io}{index}`.
- module: the qualified name from `model.named_modules()` (`blocks.0.fc1`); the model itself is `(model)`.
- call: the module's forward calls counted from 0 since recording began (across steps: with one call per step,
  step 3's call is #3). Backward records carry the call of the forward they belong to.
- forward io: `input{i}` (recorded before the module runs, so a module that changes its input in place does not
  falsify it) and `output{i}`; i counts every tensor of the (args, kwargs) or of the output, floating or not
  (lists and tuples in order, dicts by value), and only floating tensors are recorded.
- backward io: `grad_output{i}`, the gradient with respect to output i, and `grad_input{i}`, the gradient with
  respect to input i — for an input that other code uses too (a residual stream), the total gradient of that
  tensor, not only this module's share. Recorded from tensor hooks registered on the forward's tensors.
- parameters: `{parameter}#{step}/forward/parameter0` (module: the parameter's qualified name, `blocks.0.fc1.weight`;
  call: the step), each floating parameter as a call of the model starts (a tied one under the name
  named_parameters() gives it; meta `parameter_aliases` has its other names). They are what a module computes from
  besides its inputs: after an optimizer step, a module's output may differ only because its weights do. With
  tensors=True their tensors are stored only when `select` names them.

Why tensor hooks and not `register_full_backward_hook`: full backward hooks wrap a module's inputs and outputs in
a view-returning autograd function, and any in-place change of those tensors then fails ("Output 0 of
BackwardHookFunctionBackward is a view and is being modified inplace") — which breaks ordinary models
(`nn.ReLU(inplace=True)`, `out += identity` in ResNets). Tensor hooks leave the model's autograd graph alone.
A hook records its first firing only (a second backward through a retained graph is not recorded again).
"""

from __future__ import annotations

from typing import Any

import torch

from acceldoctor.compare.record import INTERNAL, ROOT, Recorder, collect_tensors


class _GradHook:
    """Records the gradient reaching one forward tensor (at one version), the first time it arrives, once for each
    module call that saw the tensor: a module's output is often the next one's input, and one hook serves both."""

    __slots__ = ("recorder", "targets", "fired")

    def __init__(self, recorder: ModuleRecorder):
        self.recorder = recorder
        self.targets: list[tuple[str, int, str, int]] = []  # (module, call, io, index)
        self.fired = False

    def __call__(self, grad: torch.Tensor | None) -> None:
        if self.fired or not self.recorder.active or grad is None or not grad.is_floating_point():
            return
        self.fired = True
        recorder = self.recorder
        grad_was_enabled = torch.is_grad_enabled()  # on with create_graph=True
        torch._C._set_grad_enabled(False)
        INTERNAL.busy = True
        try:
            with recorder._lock:
                for module, call, io, index in self.targets:
                    recorder.add(recorder.make_record(f"{module}#{call}/backward/{io}{index}", module, None, call,
                                                      "backward", io, index, grad))
        finally:
            INTERNAL.busy = False
            torch._C._set_grad_enabled(grad_was_enabled)


class ModuleRecorder(Recorder):
    level = "module"

    def _install(self) -> None:
        self._calls: dict[str, int] = {}
        self._open: dict[str, list[int]] = {}  # calls in progress per module (a module may run inside itself)
        for name, module in self.model.named_modules():
            qualname = name or ROOT
            self._handles.append(module.register_forward_pre_hook(self._pre_hook(qualname, module is self.model),
                                                                  with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._post_hook(qualname), with_kwargs=True,
                                                              always_call=True))

    def _pre_hook(self, qualname: str, is_root: bool):
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            if not self.active:
                return
            if is_root:
                self.steps += 1
                self.note_precision()
                self._record_parameters()
            call = self._calls.get(qualname, 0)
            self._calls[qualname] = call + 1
            self._open.setdefault(qualname, []).append(call)
            tensors = collect_tensors(kwargs, collect_tensors(args, []))
            self._record(qualname, call, "input", tensors)

        return hook

    def _post_hook(self, qualname: str):
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            open_calls = self._open.get(qualname)
            if not open_calls:
                return
            call = open_calls.pop()
            if self.active and output is not None:  # None: the forward raised (always_call hooks still run)
                self._record(qualname, call, "output", collect_tensors(output, []))

        return hook

    def _record(self, qualname: str, call: int, io: str, tensors: list[torch.Tensor]) -> None:
        grad_io = "grad_input" if io == "input" else "grad_output"
        hooks = torch.is_grad_enabled()  # without a graph being built, no backward will come
        # Statistics with autograd off (torch.no_grad() costs more than the flag on small modules).
        torch._C._set_grad_enabled(False)
        INTERNAL.busy = True
        try:
            with self._lock:
                for index, t in enumerate(tensors):
                    if not t.is_floating_point():
                        continue
                    self.add(self.make_record(f"{qualname}#{call}/forward/{io}{index}", qualname, None, call,
                                              "forward", io, index, t))
                    if hooks and t.requires_grad:
                        self._hook(t).targets.append((qualname, call, grad_io, index))
        finally:
            INTERNAL.busy = False
            torch._C._set_grad_enabled(hooks)

    def _record_parameters(self) -> None:
        step = self.step
        grad_enabled = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        INTERNAL.busy = True
        try:
            with self._lock:
                for name, parameter in self.model.named_parameters():
                    # A parameter on "meta" has no values yet: offloading hooks load it just before its module runs.
                    if parameter.is_floating_point() and not parameter.is_meta:
                        self.add(self.make_record(f"{name}#{step}/forward/parameter0", name, None, step, "forward",
                                                  "parameter", 0, parameter, store_unselected=False))
        finally:
            INTERNAL.busy = False
            torch._C._set_grad_enabled(grad_enabled)

    def _hook(self, t: torch.Tensor) -> _GradHook:
        """The gradient hook of t at its current version (make_record has just cached t's entry)."""
        entry = self._seen[id(t)]
        hook = entry[4]
        if hook is None or hook.fired:
            hook = entry[4] = _GradHook(self)
            t.register_hook(hook)
        return hook
