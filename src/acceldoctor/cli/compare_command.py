"""`acceldoctor compare`: two recorded runs, or one model run on two devices/dtypes, and where they part."""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from acceldoctor.cli.errors import UsageError

MAX_STEPS = 1000


def _sides(devices: str, dtypes: str, inject: str | None):
    from acceldoctor.compare.one_command import Side

    device_list = [d.strip() for d in devices.split(",") if d.strip()]
    dtype_list = [d.strip().removeprefix("torch.") for d in dtypes.split(",") if d.strip()]
    if len(device_list) == 1:
        device_list *= 2
    if len(dtype_list) == 1:
        dtype_list *= 2
    if len(device_list) != 2 or len(dtype_list) != 2:
        raise UsageError("--devices and --dtypes take one value or two, comma-separated (e.g. cpu,cuda:0)")
    import torch

    for dtype in dtype_list:
        if not isinstance(getattr(torch, dtype, None), torch.dtype) or not getattr(torch, dtype).is_floating_point:
            raise UsageError(f"--dtypes: {dtype!r} is not a floating torch dtype (float32, bfloat16, float16, ...)")
    faults = {"a": None, "b": None}
    if inject:
        from acceldoctor.faults.catalog import UnknownFault, get_fault

        name, _, side = inject.partition("@")
        if side not in ("a", "b"):
            raise UsageError(f"--inject {inject!r}: say which run gets the fault: FAULT@a or FAULT@b")
        try:
            get_fault(name)
        except UnknownFault as exc:
            raise UsageError(f"{exc.args[0]}; see `acceldoctor list --faults`") from None
        faults[side] = name
    from acceldoctor.devices.discovery import UnknownDeviceError, list_devices, resolve_devices

    try:
        resolve_devices(",".join(dict.fromkeys(device_list)), list_devices())
    except UnknownDeviceError as exc:
        raise UsageError(str(exc)) from None
    return [Side(label, device, dtype, faults[label])
            for label, device, dtype in zip(("a", "b"), device_list, dtype_list, strict=True)]


def _one_command(model: str, devices: str, dtypes: str, steps: int, level: str, seed: int, inject: str | None,
                 keep: str | None, tolerance: float):
    from acceldoctor.compare.one_command import (
        ModelSpecError,
        build,
        load_builder,
    )

    if not 1 <= steps <= MAX_STEPS:
        raise UsageError(f"--steps {steps}: give 1 to {MAX_STEPS}")
    sides = _sides(devices, dtypes, inject)
    try:
        network, inputs = build(load_builder(model), seed)
    except ModelSpecError as exc:
        raise UsageError(str(exc)) from None
    scratch = None if keep else tempfile.TemporaryDirectory(prefix="acceldoctor-compare-")
    root = Path(keep) if keep else Path(scratch.name)
    try:
        comparison, runs = _record_and_compare(network, inputs, sides, root, steps, level, seed, tolerance)
        if scratch is not None:
            for run in runs.values():
                run["path"] = f"run {run['path'][-1].upper()} (not kept: --keep DIR keeps the dumps)"
        return comparison, runs
    finally:
        if scratch is not None:
            scratch.cleanup()


def _record_and_compare(network, inputs, sides, root: Path, steps: int, level: str, seed: int, tolerance: float):
    from acceldoctor.compare.dump import load_dump
    from acceldoctor.compare.judge import compare_dumps, run_precision
    from acceldoctor.compare.one_command import replay_first_divergence, run_side

    losses, runs, faults = {}, {}, {}
    for side in sides:
        path = root / f"run_{side.label}"
        err = Console(stderr=True)
        err.print(f"recording run {side.label.upper()}: {side.device}, {side.dtype}, {steps} step(s)"
                  + (f", fault {side.fault}" if side.fault else ""), highlight=False)
        try:
            ran = run_side(network, inputs, side, path, steps=steps, level=level, seed=seed)
        except Exception as exc:  # the user's model on a device: its error, in one line
            raise UsageError(f"run {side.label.upper()} on {side.device} failed: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        losses[side.label], faults[side.label] = ran.losses, ran.fault
        runs[side.label] = {"path": str(path), "device": side.device, "dtype": side.dtype, "fault": side.fault}
    dump_a, dump_b = load_dump(root / "run_a"), load_dump(root / "run_b")
    runs["a"]["precision"], runs["b"]["precision"] = run_precision(dump_a).label, run_precision(dump_b).label
    comparison = compare_dumps(dump_a, dump_b, tolerance)
    comparison.losses = losses
    for label, fault in faults.items():
        if fault is not None and comparison.equivalent:  # a demonstration that shows nothing needs a reason
            Console(stderr=True).print(f"warning: the fault {runs[label]['fault']} injected into run {label.upper()} "
                                       f"left the runs equivalent: {fault.why_unseen()}", highlight=False)
    first = comparison.first_divergence
    if first is not None and first.produced:
        Console(stderr=True).print("re-running the first diverging call in float64 to see which run is wrong",
                                   highlight=False)
        try:
            comparison.replay = replay_first_divergence(network, inputs, sides, root, steps=steps, key=first.key,
                                                        level=level, seed=seed)
        except Exception as exc:  # the comparison stands without it; say why the re-run failed
            comparison.replay = {"verdict": f"the call could not be re-run ({type(exc).__name__}: {exc})"}
    return comparison, runs


def _two_dumps(dumps: list[str], tolerance: float):
    from acceldoctor.compare.dump import DumpError, load_dump
    from acceldoctor.compare.judge import compare_dumps, main_dtype, run_precision
    from acceldoctor.compare.replay import replay_recorded_op

    try:
        dump_a, dump_b = (load_dump(Path(p)) for p in dumps)
    except DumpError as exc:
        raise UsageError(str(exc)) from None
    levels = (dump_a.meta.get("level"), dump_b.meta.get("level"))
    if levels[0] != levels[1]:
        raise UsageError(f"the dumps were recorded at different levels ({levels[0]} and {levels[1]}); record both "
                         "at the same level")
    err = Console(stderr=True)
    if dump_a.meta.get("model") != dump_b.meta.get("model"):
        err.print(f"warning: the dumps come from different models ({dump_a.meta.get('model')}, "
                  f"{dump_b.meta.get('model')})", highlight=False)
    for path, dump in zip(dumps, (dump_a, dump_b), strict=True):
        if dump.meta.get("complete") is False or dump.meta.get("error"):
            err.print(f"warning: {path} is incomplete ({dump.meta.get('error') or 'the run did not finish'}); "
                      "comparing what it holds", highlight=False)
    comparison = compare_dumps(dump_a, dump_b, tolerance)
    if not comparison.keys:
        raise UsageError("the two dumps have no key in common: they do not record the same model and code")
    first = comparison.first_divergence
    if first is not None and first.op is not None:
        try:
            comparison.replay = replay_recorded_op(dump_a, dump_b, first.key)
        except Exception as exc:  # the comparison stands without it
            comparison.replay = {"verdict": f"the op could not be re-run ({type(exc).__name__}: {exc})"}
    runs = {label: {"path": str(path), "device": dump.meta.get("device", "?"), "level": dump.meta.get("level"),
                    "dtype": main_dtype(dump), "precision": run_precision(dump).label}
            for label, path, dump in (("a", dumps[0], dump_a), ("b", dumps[1], dump_b))}
    return comparison, runs


def run_compare_command(*, dumps: list[str], model: str | None, devices: str, dtypes: str, steps: int, level: str,
                        seed: int, inject: str | None, keep: str | None, json_path: str | None,
                        first_nonfinite: bool, tolerance: float, html_path: str | None = None) -> int:
    import json

    from acceldoctor.compare.report import comparison_json, render_comparison
    from acceldoctor.report.writer import ReportWriteError, ReportWriter, write_atomically

    if level not in ("module", "op"):
        raise UsageError(f"--level {level!r}: choose module or op")
    if not (0 < tolerance < math.inf):  # also refuses nan
        raise UsageError("--tolerance must be a positive number of machine epsilons")
    target = ReportWriter(json_path)
    page = ReportWriter(html_path) if html_path is not None else None
    try:
        target.check_writable()
        if page is not None:
            if page.path is None:
                raise ReportWriteError("--html needs a file")
            page.check_writable()
    except ReportWriteError as exc:
        raise UsageError(str(exc)) from None
    if model is not None:
        if dumps:
            raise UsageError("give either two dumps or --model, not both")
        comparison, runs = _one_command(model, devices, dtypes, steps, level, seed, inject, keep, tolerance)
    elif len(dumps) != 2:
        raise UsageError(f"give two dumps to compare (got {len(dumps)}), or --model module:function")
    else:
        comparison, runs = _two_dumps(dumps, tolerance)
    document = comparison_json(comparison, runs)
    if target.path is not None:
        write_atomically(target.path, json.dumps(document, indent=2) + "\n", target.file_mode, what="comparison")
    if page is not None:
        from acceldoctor.compare.report import render_comparison_html

        write_atomically(page.path, render_comparison_html(document), page.file_mode, what="the page")
    if target.to_stdout:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        render_comparison(comparison, runs, Console())
    if first_nonfinite:
        return 1 if any((comparison.first_nonfinite or {}).values()) else 0
    return 0 if comparison.equivalent else 1
