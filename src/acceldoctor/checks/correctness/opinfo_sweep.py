"""correctness.opinfo_sweep: every operator in PyTorch's OpInfo database against a float64 CPU golden."""

from __future__ import annotations

import fnmatch
import itertools
import time
import warnings
import zlib
from dataclasses import dataclass, field

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.correctness import _opinfo as oi
from acceldoctor.checks.correctness._inputs import golden
from acceldoctor.checks.dtypes import BF16, FP16, FP32, FP64, DtypeVariant
from acceldoctor.checks.numerics import Comparison, compare_to_golden
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.checks.tolerances import tolerance
from acceldoctor.checks.unsupported import is_unsupported
from acceldoctor.messages import describe_exception
from acceldoctor.report.model import Metric, Status

VARIANT_OF = {v.dtype: v for v in (FP32, BF16, FP16, FP64)}
PERTURBATIONS = 2  # random one-ULP perturbations of the inputs used to measure the op's sensitivity
SHOWN = 3  # failing ops spelled out in the message


@register_check(
    id="correctness.opinfo_sweep",
    title="Every operator in PyTorch's OpInfo database matches a float64 CPU reference",
    levels=("full",),
    timeout_s=900.0,
    tolerances=("opinfo_sweep", "opinfo_sweep.resampling"),
    params=(
        Param("ops", "*", "Comma-separated globs over OpInfo names (`name` or `name.variant`), e.g. 'add,mul'."),
        Param("max_samples", 8, "Sample inputs taken per operator and dtype."),
        Param("time_budget_s", 300.0, "Stop starting new operators after this many seconds and report the "
              "coverage reached (the check then warns)."),
    ),
    doc=CheckDoc(
        verifies="Runs every operator of PyTorch's own OpInfo test database (about 650 operators with their "
                 "variants: elementwise, reductions, linear algebra, convolutions, pooling, losses, "
                 "interpolation, indexing, FFTs with real outputs) on the device in fp32, bf16 and fp16, on the "
                 "sample inputs PyTorch's test suite uses, and compares every floating-point output with "
                 "the same op run on the CPU in float64 on the same (already rounded) inputs. The tolerance is "
                 "generous and generic (data/tolerances/correctness.opinfo_sweep.yaml): output rounding, "
                 "plus an allowance that grows with the log of the largest input's size, applied to the "
                 "operands' scale and to how far the float64 result moves when every input is perturbed by "
                 "one ULP (so ill-conditioned ops and discontinuities are judged fairly). Random and "
                 "non-unique ops are excluded (data/opinfo_exclusions.yaml, each with its reason).",
        why="Checks written by hand cover the ops that matter most; real models call hundreds of others, "
            "and accelerator plugins (CANN, ROCm, XPU, MPS) implement each op separately, often by falling "
            "back, decomposing or calling a vendor library with its own edge-case bugs. This sweep finds "
            "the op that is simply wrong on a device before a model silently depends on it.",
        failure_means="The named operators returned numbers further from the float64 result than any "
                      "reasonable kernel would, in the named dtype; the message gives the sample and the "
                      "worst element. Ops that raise 'not implemented' on the device are skipped, not "
                      "failed; other errors make the check warn.",
        remedy="Reproduce the failing op in a few lines: take it from "
               "`torch.testing._internal.common_methods_invocations.op_db` by name, draw "
               "`op.sample_inputs(device, dtype)` and compare with the same sample in float64 on the CPU; "
               "the check's `ops` parameter (globs) limits the sweep to it. Report it to the vendor's PyTorch "
               "plugin with the op, dtype and sample, and avoid the op in that dtype until it is fixed.",
    ),
)
def check_opinfo_sweep(ctx: CheckContext) -> CheckOutcome:
    op_db = oi.load_op_db()
    patterns = [p.strip() for p in str(ctx.params["ops"]).split(",") if p.strip()]
    selected = [op for op in op_db if any(fnmatch.fnmatchcase(oi.full_name(op), p) for p in patterns)]
    if not selected:
        raise ValueError(f"no OpInfo operator matches {ctx.params['ops']!r}")
    tally = _Tally(selected=len(selected))
    deadline = time.monotonic() + float(ctx.params["time_budget_s"])
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        for n, op in enumerate(selected):
            if time.monotonic() >= deadline:
                tally.not_reached = len(selected) - n
                break
            name = oi.full_name(op)
            ctx.progress(n, len(selected), name)
            if op.has_nondeterministic_output or oi.exclusion_for(name, None, ctx.device.type):
                tally.excluded += 1
                continue
            supported = op.supported_dtypes(ctx.device.type)
            outcomes = [_sweep(ctx, op, name, variant, tally) for variant in ctx.variants()
                        if variant.dtype in supported and not oi.exclusion_for(name, variant.name, ctx.device.type)]
            tally.op_done(outcomes)
    return tally.outcome(ctx)


def _sweep(ctx: CheckContext, op, name: str, variant: DtypeVariant, tally: _Tally) -> str:
    """Compare up to max_samples samples of `op` in `variant`; returns pass, fail, raised or skip."""
    torch.manual_seed(ctx.seed * 1_000_003 + zlib.crc32(f"{name}/{variant.name}".encode()))
    gen = ctx.generator(salt=zlib.crc32(name.encode()))
    try:
        samples = op.sample_inputs(str(ctx.device), variant.dtype)
        samples = list(itertools.islice(samples, int(ctx.params["max_samples"])))
    except Exception:  # the sample generator itself needs something this device lacks
        return "skip"
    results = [_compare_sample(ctx, op, name, variant, i, sample, gen, tally) for i, sample in enumerate(samples)]
    for status in ("fail", "raised", "pass"):
        if status in results:
            return status
    return "skip"


def _compare_sample(ctx, op, name, variant, index, sample, gen, tally) -> str:
    sample_leaves = oi.leaves(sample)
    tensors = [x for x in sample_leaves if isinstance(x, torch.Tensor)]
    if any(t.layout != torch.strided for t in tensors) or sample.kwargs.get("dropout_p", 0):
        return "skip"  # sparse layouts are out of scope; dropout_p > 0 makes the output random
    reference = oi.to_reference(sample)  # before the op runs: in-place ops would change the inputs
    shape = list(tensors[0].shape) if tensors else []
    try:
        with torch.no_grad(), variant.math_mode():
            actual = oi.float_outputs(op(sample.input, *sample.args, **sample.kwargs))
        ctx.synchronize()
    except Exception as exc:
        if is_unsupported(exc):
            return "skip"
        tally.raised.append(f"{name} in {variant.name} raised {describe_exception(exc)}")
        return "raised"
    try:
        expected = oi.float_outputs(golden(op, reference[0], *reference[1], **reference[2]))
        moved = [oi.float_outputs(golden(op, p[0], *p[1], **p[2]))
                 for p in (oi.perturbed(reference, variant.eps, gen) for _ in range(PERTURBATIONS))]
    except Exception:
        return "skip"  # no float64 CPU reference for this sample
    if len(actual) != len(expected):
        tally.fail(name, variant, 0.0, f"returned {len(actual)} outputs but the reference {len(expected)}")
        return "fail"
    # reduction length: the largest input; for a factory (no tensor input) the output it computes
    k = max([t.numel() for t in tensors] or [t.numel() for t in actual if isinstance(t, torch.Tensor)] or [1])
    compared, ok = False, True
    for j, (a, g) in enumerate(zip(actual, expected, strict=True)):
        if not (isinstance(a, torch.Tensor) and a.dtype in VARIANT_OF and isinstance(g, torch.Tensor)):
            continue  # integer outputs (indices), python scalars: not judged here
        out_variant = VARIANT_OF[a.dtype]
        result = _judge(a, g, [m[j] for m in moved if len(m) == len(expected)], out_variant, k, sample_leaves,
                        oi.tolerance_key(name))
        compared, ok = True, ok and result.ok
        tally.record(name, variant, result, f"sample {index}, input shape {shape}, output {j}")
    tally.samples += compared
    return "skip" if not compared else ("pass" if ok else "fail")


def _judge(a, g, moved, out_variant: DtypeVariant, k: int, sample_leaves, tolerance_key: str) -> Comparison:
    """compare_to_golden with magnitude = operand scale + sensitivity / eps (see the tolerance's `why`)."""
    with torch.no_grad():
        g64 = g.detach().to("cpu", torch.float64)
        sensitivity = torch.zeros_like(g64)
        for m in moved:
            if isinstance(m, torch.Tensor) and m.shape == g64.shape:
                delta = (m.detach().to("cpu", torch.float64) - g64).abs()
                sensitivity = torch.maximum(sensitivity, torch.nan_to_num(delta, nan=0.0, posinf=0.0))
        magnitude = oi.operand_scale(sample_leaves, g64) + sensitivity / out_variant.eps
    return compare_to_golden(a, g64, out_variant, tolerance(tolerance_key), k, magnitude)


@dataclass
class _Tally:
    selected: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    excluded: int = 0
    not_reached: int = 0
    samples: int = 0
    raised: list[str] = field(default_factory=list)
    failures: dict[str, tuple[float, str]] = field(default_factory=dict)  # "op in dtype" -> (worst ratio, text)
    per_dtype: dict[str, list[float]] = field(default_factory=dict)  # dtype -> [outputs, failed ops, worst ratio]

    def record(self, name: str, variant: DtypeVariant, result: Comparison, where: str) -> None:
        stats = self.per_dtype.setdefault(variant.name, [0, 0, 0.0])
        stats[0] += 1
        stats[2] = max(stats[2], result.worst_ratio)
        if not result.ok:
            self.fail(name, variant, result.worst_ratio, f"{where}: {result.describe_worst()}")

    def fail(self, name: str, variant: DtypeVariant, ratio: float, text: str) -> None:
        key = f"{name} in {variant.name}"
        if key not in self.failures or ratio > self.failures[key][0]:
            self.failures[key] = (ratio, text)

    def op_done(self, outcomes: list[str]) -> None:
        if "fail" in outcomes:
            self.failed += 1
        elif "pass" in outcomes:
            self.passed += 1
        elif "raised" not in outcomes:
            self.skipped += 1

    def outcome(self, ctx: CheckContext) -> CheckOutcome:
        for key in self.failures:
            self.per_dtype.setdefault(key.rsplit(" in ", 1)[1], [0, 0, 0.0])[1] += 1
        metrics = [Metric(name=n, value=v, unit="count") for n, v in (
            ("ops_selected", self.selected), ("ops_passed", self.passed), ("ops_skipped", self.skipped),
            ("ops_excluded", self.excluded), ("ops_not_reached", self.not_reached),
            ("ops_raised", len({r.split(" in ")[0] for r in self.raised})), ("samples_compared", self.samples))]
        metrics.append(Metric(name="ops_failed", value=self.failed, unit="count", threshold=0))
        for dtype, (outputs, failed, worst) in self.per_dtype.items():
            metrics += [Metric(name="outputs_compared", value=outputs, unit="count", dtype=dtype),
                        Metric(name="failed_ops", value=failed, unit="count", dtype=dtype, threshold=0),
                        Metric(name="worst_error_to_tolerance", value=worst, unit="ratio", dtype=dtype,
                               threshold=1.0)]
        reached = self.selected - self.not_reached
        counts = (f"{self.passed} of {reached} operators match the float64 reference ({self.skipped} skipped as "
                  f"unsupported or without float output, {self.excluded} excluded by data/opinfo_exclusions.yaml)")
        if self.failures:
            worst = sorted(self.failures.items(), key=lambda kv: -kv[1][0])
            shown = "; ".join(f"{key} ({text})" for key, (_, text) in worst[:SHOWN])
            more = f"; {len(worst) - SHOWN} more" if len(worst) > SHOWN else ""
            return CheckOutcome(Status.FAIL, f"opinfo sweep: {self.failed} operator(s) give wrong results: "
                                             f"{shown}{more}; {counts}.", metrics)
        worst = max((w for _, _, w in self.per_dtype.values()), default=0.0)
        summary = f"opinfo sweep: {counts}, worst error {worst:.2f} of tolerance"
        if self.not_reached:
            return CheckOutcome(Status.WARN, (
                f"opinfo sweep: coverage is partial, the {ctx.params['time_budget_s']} s time budget ran out after "
                f"{reached} of {self.selected} operators ({self.not_reached} not reached); {counts}, worst error "
                f"{worst:.2f} of tolerance"), metrics)
        if self.raised:
            return CheckOutcome(Status.WARN, f"{summary}; but {len(self.raised)} sample(s) raised errors, first: "
                                             f"{self.raised[0]}", metrics)
        if not self.passed:
            return CheckOutcome(Status.SKIP, f"opinfo sweep: none of the {reached} selected operators could be "
                                             f"compared on {ctx.device}", metrics)
        return CheckOutcome(Status.PASS, f"{summary}.", metrics)
