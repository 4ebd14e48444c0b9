"""determinism.reduction: the same sum, mean, index_add and scatter_add, repeated, must give the same bits."""

from __future__ import annotations

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.correctness._inputs import draw, place
from acceldoctor.checks.determinism._bits import describe_difference
from acceldoctor.checks.numerics import bitwise_equal
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.report.model import Metric, Status


def _sum_rows(x, _):
    return torch.sum(x, dim=-1)


def _sum_cols(x, _):
    return torch.sum(x, dim=0)


def _mean_all(x, _):
    return torch.mean(x)


def _index_add(x, index):
    return torch.zeros(17, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)


def _scatter_add(x, index):
    target = torch.zeros(17, x.shape[1], dtype=x.dtype, device=x.device)
    return target.scatter_add_(0, index[:, None].expand(-1, x.shape[1]), x)


# name -> (function, uses atomics on accelerators). Documented as non-deterministic on CUDA unless
# torch.use_deterministic_algorithms(True) is set: index_add_ and scatter_add_ resolve duplicate
# indices with atomic additions whose order varies from run to run.
OPS = {
    "sum dim=-1": (_sum_rows, False),
    "sum dim=0": (_sum_cols, False),
    "mean": (_mean_all, False),
    "index_add_ dim=0": (_index_add, True),
    "scatter_add_ dim=0": (_scatter_add, True),
}


@register_check(
    id="determinism.reduction",
    title="Repeating the same sum, mean, index_add and scatter_add gives bit-identical results",
    levels=("quick", "standard", "full"),
    params=(
        Param("repetitions", 100, "How many times each reduction is computed.", {"quick": 30}),
        Param("rows", 16385, "Length of the reduced axis (and number of indexed source rows).", {"quick": 4097}),
    ),
    doc=CheckDoc(
        verifies="`torch.sum` along the last and the first dimension, `torch.mean` of a whole tensor, and "
                 "`index_add_` / `scatter_add_` with many duplicate indices, each computed over and over on "
                 "the same input (30 rounds at quick level, 100 at standard) in fp32, bf16 and fp16; every "
                 "result must be bit for bit equal to the first one. It tests the default behaviour users "
                 "get, without `torch.use_deterministic_algorithms(True)`: plain reductions (sum, mean) must "
                 "be reproducible on every device, while index_add_ and scatter_add_, which resolve duplicate "
                 "indices with atomic additions on accelerators, are only reported as a warning there when "
                 "they vary (and fail when deterministic mode was requested, or on the CPU).",
        why="Reproducibility is how people debug training: a loss curve that changes between two runs of "
            "the same code with the same seed hides every other change. sum and mean are not among the "
            "operations PyTorch lists as non-deterministic; a reduction kernel that changes its combination "
            "order between calls (atomics on partial sums, work split by whichever block finishes first) "
            "makes every downstream number wander in its last bits, and those differences grow through "
            "training. The atomics-based scatter/index accumulations are listed exceptions on CUDA that "
            "users should know about.",
        failure_means="A sum or mean of identical inputs gave different bits on different calls: the message "
                      "names the op, dtype, repetition and the first differing element with both values. "
                      "Runs on this stack cannot be reproduced bit for bit. A warning means index_add_ or "
                      "scatter_add_ differ between calls because of atomic accumulation, as documented.",
        remedy="For sum/mean differences, report the op, dtype and shape to the vendor (PyTorch does not list "
               "them as non-deterministic) and compare in float32 if a workaround is needed. For "
               "index_add_/scatter_add_, call `torch.use_deterministic_algorithms(True)` when bitwise "
               "reproducibility matters (on CUDA also set `CUBLAS_WORKSPACE_CONFIG=:4096:8`), at some cost "
               "in speed.",
    ),
)
def check_reduction_determinism(ctx: CheckContext) -> CheckOutcome:
    repetitions = int(ctx.params["repetitions"])
    rows = int(ctx.params["rows"])
    deterministic_mode = torch.are_deterministic_algorithms_enabled()
    atomics_may_vary = _atomics_may_vary(ctx.device)
    gen = ctx.generator()
    index = torch.randint(17, (rows,), generator=gen).to(ctx.device)
    cases = []  # [label, function, input, uses atomics, first result]
    for variant in ctx.variants():
        x, _ = place(draw((rows, 33), gen), variant, ctx.device)
        for name, (fn, atomics) in OPS.items():
            cases.append([f"{name} of {rows}x33 in {variant.name}", fn, x, atomics, None])
    failures: list[str] = []  # the first description, then only counted
    warnings: list[str] = []
    mismatching_runs = 0
    for rep in range(1, repetitions + 1):
        for case in cases:
            label, fn, x, atomics, reference = case
            out = fn(x, index)
            ctx.synchronize()
            if reference is None:
                case[4] = out
                continue
            if bitwise_equal(out, reference):
                continue
            mismatching_runs += 1
            found = warnings if atomics and atomics_may_vary else failures
            found.append(describe_difference(label, rep, repetitions, out, reference) if not found else "")
    metrics = [
        Metric(name="repetitions", value=repetitions, unit="count"),
        Metric(name="reductions", value=len(cases), unit="count"),
        Metric(name="mismatching_runs", value=mismatching_runs, unit="count", threshold=0),
        Metric(name="deterministic_mode", value=int(deterministic_mode), unit="bool"),
    ]
    if failures:
        more = f" ({len(failures) - 1} more mismatching run(s))" if len(failures) > 1 else ""
        return CheckOutcome(Status.FAIL, f"{failures[0]}{more}.", metrics)
    if warnings:
        return CheckOutcome(
            Status.WARN,
            f"{warnings[0]}, which is allowed for this atomics-based op without "
            f"torch.use_deterministic_algorithms(True) (sum and mean were reproducible).",
            metrics,
        )
    return CheckOutcome(
        Status.PASS,
        f"{len(cases)} reductions repeated {repetitions} times each gave bit-identical results every time.",
        metrics,
    )


def _atomics_may_vary(device: torch.device) -> bool:
    """Atomic accumulation order may legitimately vary on accelerators, unless deterministic mode is on."""
    return device.type != "cpu" and not torch.are_deterministic_algorithms_enabled()
