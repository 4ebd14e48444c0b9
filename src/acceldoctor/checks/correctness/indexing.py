"""correctness.indexing: gather, scatter_add and index_add (duplicate indices, strided sources) against float64."""

from __future__ import annotations

import functools

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._inputs import draw, golden, place, transposed_view
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.checks.tolerances import tolerance


@register_check(
    id="correctness.indexing",
    title="gather, scatter_add and index_add move and accumulate the right values",
    levels=("quick", "standard", "full"),
    tolerances=("gather", "scatter_add", "index_add"),
    params=(
        Param("sources", 65_536, "Source rows scattered into 17 targets (so ~sources/17 duplicates "
              "each).", {"quick": 2_048}),
    ),
    doc=CheckDoc(
        verifies="`torch.gather` along dimensions 0 and 1 (including a transposed source and NaN/inf values, "
                 "which must be copied bit for bit), and `scatter_add_` / `torch.scatter_add` and `index_add_` "
                 "/ `torch.index_add` along dimensions 0 and 1 with many duplicate indices (a hundred or more "
                 "contributions to each target), skewed duplicates, a non-contiguous source, `alpha` and "
                 "NaN/inf sources, in fp32, bf16 and fp16. Gathered values must equal the source exactly; "
                 "accumulated values are compared with the float64 sums with an allowance that grows with "
                 "the number of contributions to each target element.",
        why="Embedding lookups, their gradients, MoE token routing, graph neural networks, top-k sampling "
            "and cross-entropy all index into tensors. Accumulating kernels resolve duplicate indices with "
            "atomics or with sort-and-segment passes; lost updates under contention, a wrong segment "
            "boundary, or a strided source read as contiguous give wrong embeddings gradients without any "
            "error, and the model trains a little worse.",
        failure_means="A gathered value differs from the source element it should be a copy of, or an "
                      "accumulated value differs from the exact sum by more than any summation order can "
                      "explain (typically a lost or doubled update), or an inf/NaN was lost: the message "
                      "names the op, dtype, shape, dimension and element.",
        remedy="Re-run with `--select correctness.indexing` to confirm; check whether only duplicate-heavy "
               "cases, only non-contiguous sources or only one dtype fail; as a workaround accumulate in "
               "float32 or make the source contiguous; update the kernel library or framework plugin and "
               "report the op, dtype and shape to the vendor.",
    ),
)
def check_indexing(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("indexing")
    gen = ctx.generator()
    sources = int(ctx.params["sources"])
    for variant in ctx.variants():
        _gather_cases(ctx, verdict, variant, gen)
        # 17 targets receive sources/17 contributions each, in random order.
        index = torch.randint(17, (sources,), generator=gen)
        skewed = torch.where(torch.rand(sources, generator=gen) < 0.75, 3, index)  # target 3 gets 3/4 of all
        for label, idx in (("random", index), ("skewed (75% to one target)", skewed)):
            src = draw((sources, 9), gen)
            self_ = draw((17, 9), gen)
            _index_add(ctx, verdict, variant, f"index_add_ 17x9 dim=0 {label} index of {sources}", self_, 0, idx, src)
            _scatter_add(ctx, verdict, variant, f"scatter_add_ 17x9 dim=0 {label} index of {sources}x9",
                         self_, 0, idx[:, None].expand(-1, 9).contiguous(), src)
        src_t = draw((5, sources), gen)  # along dim 1, and from a transposed (non-contiguous) source
        _index_add(ctx, verdict, variant, f"torch.index_add 5x17 dim=1 of transposed 5x{sources} alpha=-2",
                   draw((5, 17), gen), 1, index, src_t, layout=transposed_view, alpha=-2.0)
        _scatter_add(ctx, verdict, variant, f"torch.scatter_add 5x17 dim=1 of transposed 5x{sources}",
                     draw((5, 17), gen), 1, index[None, :].expand(5, -1).contiguous(), src_t,
                     layout=transposed_view)
        special = draw((64, 3), gen)
        special[5, 0], special[9, 1], special[40, 2], special[41, 2] = float("nan"), float("inf"), \
            float("inf"), float("-inf")
        _index_add(ctx, verdict, variant, "index_add_ 4x3 dim=0 propagating nan/inf", draw((4, 3), gen), 0,
                   torch.arange(64) % 4, special)
        _scatter_add(ctx, verdict, variant, "scatter_add_ 4x3 dim=0 propagating nan/inf", draw((4, 3), gen), 0,
                     (torch.arange(64) % 4)[:, None].expand(-1, 3).contiguous(), special)
    return verdict.outcome()


def _gather_cases(ctx, verdict, variant, gen) -> None:
    src64 = draw((33, 129), gen)
    src64[4, 7], src64[20, 100], src64[30, 0] = float("nan"), float("inf"), float("-inf")
    src_dev, src_ref = place(src64, variant, ctx.device)
    for dim, shape in ((0, (257, 129)), (1, (33, 1025))):  # more picks than source rows: duplicates
        index = torch.randint(src64.shape[dim], shape, generator=gen)
        for label, source in (("", src_dev), (" of transposed (non-contiguous) source", transposed_view(src_dev))):
            actual = torch.gather(source, dim, index.to(ctx.device))
            ctx.synchronize()
            expected = golden(torch.gather, src_ref, dim, index)
            verdict.compare(f"gather {shape[0]}x{shape[1]} dim={dim} from 33x129{label}", actual, expected,
                            variant, op="gather")


def _contributions(target_shape, dim, index: torch.Tensor, src_shape) -> torch.Tensor:
    """How many source elements land on each target element (plus its own initial value)."""
    counts = torch.zeros(target_shape, dtype=torch.float64)
    if index.dim() == 1:
        return counts.index_add_(dim, index, torch.ones(src_shape, dtype=torch.float64)) + 1
    return counts.scatter_add_(dim, index, torch.ones(src_shape, dtype=torch.float64)) + 1


def _judge(ctx, verdict, variant, case, op, actual, expected, magnitude, counts) -> None:
    # The number of terms differs per target element: its growth is folded into the magnitude and the
    # comparison runs with length 1 (growth(1) = 1).
    tol = tolerance(op)
    growth = counts.apply_(tol.growth_factor)
    ctx.synchronize()
    verdict.compare(case, actual, expected, variant, op=op, reduction_length=1, magnitude=magnitude * growth)


def _accumulate(op, ctx, verdict, variant, case, self64, dim, index, src64, layout=None, alpha=1.0) -> None:
    """index_add or scatter_add (`op`), in place or functional (by the case label), against its golden."""
    self_dev, self_ref = place(self64, variant, ctx.device)
    src_dev, src_ref = place(src64, variant, ctx.device)
    if layout is not None:
        src_dev = layout(src_dev)
    idx_dev = index.to(ctx.device)
    scale = {"alpha": alpha} if op == "index_add" else {}
    if case.startswith("torch."):
        actual = getattr(torch, op)(self_dev, dim, idx_dev, src_dev, **scale)
    else:
        actual = getattr(self_dev, f"{op}_")(dim, idx_dev, src_dev, **scale)
    reference = getattr(torch, op)
    expected = golden(reference, self_ref, dim, index, src_ref, **scale)
    magnitude = golden(reference, self_ref.abs(), dim, index, src_ref.abs(), **{k: abs(v) for k, v in scale.items()})
    counts = _contributions(self64.shape, dim, index, src64.shape)
    _judge(ctx, verdict, variant, case, op, actual, expected, magnitude, counts)


_index_add = functools.partial(_accumulate, "index_add")
_scatter_add = functools.partial(_accumulate, "scatter_add")
