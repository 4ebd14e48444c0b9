"""`acceldoctor compare --model module:function --devices A,B`: build the model once with a seed, copy identical
weights and inputs to both sides, record N training steps on each, and compare the records and the losses.

The function takes a seed and returns `(model, inputs)`: a torch.nn.Module built on the CPU in float32 and a tuple
of input tensors; `model(*inputs)` returns the loss (a scalar) or a tensor whose mean square is used as the loss.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch


class ModelSpecError(ValueError):
    """The `--model` argument does not name a usable builder (one-line message)."""


@dataclass(frozen=True)
class Side:
    label: str  # "a" or "b"
    device: str
    dtype: str
    fault: str | None = None


def load_builder(spec: str) -> Callable:
    """The function `module:function` names (a file path `path/to/file.py:function` also works)."""
    module_name, _, function = spec.partition(":")
    if not module_name or not function:
        raise ModelSpecError(f"--model {spec!r}: give module:function, e.g. mypackage.models:build")
    try:
        if module_name.endswith(".py"):
            loader_spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"cannot load {module_name}")
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except Exception as exc:  # the user's code: any error is theirs to see in one line
        raise ModelSpecError(f"--model {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    builder = getattr(module, function, None)
    if not callable(builder):
        raise ModelSpecError(f"--model {spec!r}: {module_name} has no function {function!r}")
    return builder


def build(builder: Callable, seed: int) -> tuple[torch.nn.Module, tuple]:
    torch.manual_seed(seed)
    try:
        built = builder(seed)
        model, inputs = built
    except Exception as exc:
        raise ModelSpecError(f"the model builder failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelSpecError("the model builder must return (model, inputs) with a torch.nn.Module first")
    return model, tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)


def _to(value, device: str, dtype: torch.dtype):
    if isinstance(value, torch.Tensor):
        return value.to(device, dtype) if value.is_floating_point() else value.to(device)
    return value


def loss_of(output) -> torch.Tensor:
    """The model's scalar output, or the mean square of its output. In the run's own dtype: a cast to float32 here
    would be an op the float32 run does not have, and the two runs' keys would part."""
    if isinstance(output, (list, tuple)):
        output = output[0]
    return output if output.dim() == 0 else output.square().mean()


@dataclass(frozen=True)
class SideRun:
    losses: list[float]
    fault: object | None  # the injected Fault after the run (its `calls`, `why_unseen()`), or None


def run_side(model: torch.nn.Module, inputs: tuple, side: Side, path: Path, *, steps: int, level: str,
             lr: float = 1e-2, tensors: bool = False, select: list[str] | None = None,
             on_replica: Callable[[torch.nn.Module], None] | None = None, seed: int = 0) -> SideRun:
    """Train a copy of `model` for `steps` SGD steps on `side`, recording into `path`; the losses, and the fault
    as it ended. `on_replica` sees the copy before it runs (to hook it)."""
    from acceldoctor.compare.record import record
    from acceldoctor.faults import injected

    dtype = getattr(torch, side.dtype)
    replica = copy.deepcopy(model).to(side.device, dtype)
    args = tuple(_to(x, side.device, dtype) for x in inputs)
    optimizer = torch.optim.SGD(replica.parameters(), lr=lr)
    if on_replica is not None:
        on_replica(replica)
    torch.manual_seed(seed)  # every run draws the same random numbers (dropout masks) on the same device type
    losses = []
    with record(replica, path, level=level, tensors=tensors, select=select), injected(side.fault) as fault:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(replica(*args))
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    return SideRun([float(x) for x in torch.stack(losses).cpu()], fault)


def replay_first_divergence(model: torch.nn.Module, inputs: tuple, sides: list[Side], root: Path, *, steps: int,
                            key: str, level: str, seed: int = 0) -> dict | None:
    """Who is wrong at `key`: record both runs again keeping the tensors of that call only, and re-run the op (op
    level) or the module (module level, forward) on the CPU in float64 with each run's inputs (compare/replay.py).
    None when the call cannot be re-run (a module's backward, inputs that are not floating tensors)."""
    from acceldoctor.compare.dump import load_dump
    from acceldoctor.compare.judge import call_of
    from acceldoctor.compare.replay import replay_recorded_module, replay_recorded_op

    call = call_of(key)
    if level == "op":
        for side in sides:
            run_side(model, inputs, side, root / f"replay_{side.label}", steps=steps, level="op", tensors=True,
                     select=[call + "/*"], seed=seed)
        return replay_recorded_op(load_dump(root / "replay_a"), load_dump(root / "replay_b"), key)
    qualname, _, number = call.partition("/")[0].rpartition("#")
    if "/forward/" not in key or not number.isdigit():
        return None
    snapshots: dict[str, torch.nn.Module] = {}
    for side in sides:
        run_side(model, inputs, side, root / f"replay_{side.label}", steps=steps, level="module", tensors=True,
                 select=[call + "/*"], on_replica=_snapshot_call(qualname, int(number), side.label, snapshots),
                 seed=seed)
    if len(snapshots) != 2:
        return None
    return replay_recorded_module(load_dump(root / "replay_a"), load_dump(root / "replay_b"), key, snapshots)


def _snapshot_call(qualname: str, call: int, label: str, snapshots: dict) -> Callable[[torch.nn.Module], None]:
    """A hook-installer that keeps a copy of module `qualname` as it is at its forward call number `call`."""
    def install(replica: torch.nn.Module) -> None:
        target = replica if qualname == "(model)" else replica.get_submodule(qualname)
        calls = iter(range(1 << 62))

        def keep(module, args):
            if next(calls) == call:
                snapshots[label] = copy.deepcopy(module)

        target.register_forward_pre_hook(keep)

    return install
