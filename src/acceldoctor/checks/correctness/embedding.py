"""correctness.embedding: F.embedding must gather rows bit-exactly; its backward accumulates repeated indices."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._grad import Grad, run_both, unsupported_dtype
from acceldoctor.checks.correctness._inputs import draw
from acceldoctor.checks.numerics import bits_of, bitwise_equal
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.checks.tolerances import tolerance
from acceldoctor.faults import suspended

# (vocab, dim, index shape, padding_idx, hot): `hot` sends a third of all lookups to one row (a frequent token),
# so its gradient sums hundreds of contributions; odd sizes everywhere.
CASES = {
    "quick": [(37, 17, (4, 33), None, False), (1001, 65, (8, 129), 0, True), (5, 3, (7,), 4, False)],
    "standard": [(37, 17, (4, 33), None, False), (1001, 65, (8, 129), 0, True), (5, 3, (7,), 4, False),
                 (32003, 16, (16, 257), 2, True), (50, 4097, (3, 17), None, False), (3, 1, (4097,), None, True)],
}


def _reference(index, weight, padding_idx):
    """The gather written out as indexing; its gradient is index accumulation with the padding row kept 0."""
    out = weight[index]
    if padding_idx is not None:  # the padding row receives no gradient
        out = torch.where((index == padding_idx).unsqueeze(-1), out.detach(), out)
    return out


def _device_embedding(index, weight, padding_idx):
    return F.embedding(index, weight, padding_idx=padding_idx)


def _weight(vocab: int, dim: int, variant, gen: torch.Generator) -> torch.Tensor:
    """Random rows plus values a copy must keep bit for bit: NaN, +-inf, -0.0, the smallest subnormal."""
    w = draw((vocab, dim), gen)
    special = [float("nan"), float("inf"), float("-inf"), -0.0, torch.finfo(variant.dtype).smallest_normal / 4,
               torch.finfo(variant.dtype).max]
    for i, value in enumerate(special[: vocab * dim]):
        w.view(-1)[(i * 7919) % (vocab * dim)] = value
    return w


@register_check(
    id="correctness.embedding",
    title="Embedding lookups copy rows exactly, and their gradients accumulate repeated tokens",
    levels=("quick", "standard", "full"),
    tolerances=("embedding", "embedding.backward"),
    params=(Param("cases", "standard", "Which table and index set to sweep.", {"quick": "quick"},
          choices=tuple(CASES)),),
    doc=CheckDoc(
        verifies="`F.embedding` forward is a gather and must reproduce the table's rows bit for bit, "
                 "including NaN, infinities, -0.0, subnormals and the largest finite value, for vocabularies "
                 "up to 32003 and odd embedding sizes. Its backward (the weight gradient) must add up the "
                 "upstream gradients of every position that used a row, including a row looked up hundreds "
                 "of times (a frequent token) and a padding_idx row that must receive exactly zero. Gradients "
                 "are compared with a float64 CPU index accumulation of the same rounded values, in fp32, "
                 "bf16 and fp16.",
        why="Token embeddings are the first layer of every language model. Some stacks implement the lookup "
            "as a one-hot matmul or through an arithmetic path that flushes subnormals, turns -0.0 into 0.0 "
            "or spreads NaN; the backward needs atomic or sorted accumulation, and lost atomic updates or a "
            "non-accumulating index_put make frequent tokens learn from one occurrence only.",
        failure_means="If the forward fails, the device does not copy memory faithfully in a gather (the "
                      "message names the first differing element). If the gradient fails, repeated indices "
                      "are not accumulated correctly or the padding row is updated; training silently "
                      "under-trains frequent tokens.",
        remedy="Re-run with `--select correctness.embedding`; check `correctness.indexing` for the same "
               "device; update the driver and framework plugin; report the failing case and dtype to the "
               "vendor with the JSON report attached.",
    ),
)
def check_embedding(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("embedding")
    gen = ctx.generator(71)
    for variant in ctx.variants():
        try:
            for vocab, dim, index_shape, padding_idx, hot in CASES[ctx.params["cases"]]:
                index = torch.randint(vocab, index_shape, generator=gen)
                if hot:
                    index.view(-1)[torch.rand(index.numel(), generator=gen) < 1 / 3] = 1
                if padding_idx is not None:
                    index.view(-1)[:: 5] = padding_idx
                case = (f"embedding {vocab}x{dim} table, indices {'x'.join(map(str, index_shape))}"
                        + (f", padding_idx={padding_idx}" if padding_idx is not None else "")
                        + (", one row looked up in a third of all positions" if hot else ""))
                run = run_both(ctx, variant, _device_embedding, _reference,
                               [index, Grad(_weight(vocab, dim, variant, gen)), padding_idx], gen)
                _judge(verdict, variant, case, run)
        except (RuntimeError, NotImplementedError) as exc:
            if not unsupported_dtype(exc, verdict, "embedding", variant):
                raise
    return verdict.outcome()


def _judge(verdict: Verdict, variant, case: str, run) -> None:
    index, weight, padding_idx = run.inputs
    with suspended():
        # The expected bits come from the device's own table (copied to the CPU, then indexed there): a
        # float64 round trip would not keep NaN payloads.
        expected = run.device_inputs[0].cpu()[index]
        actual = run.out.cpu()
        verdict.compare(case, run.out, run.ref_out, variant, op="embedding")
        if not bitwise_equal(actual, expected):
            differ = bits_of(actual) != bits_of(expected)
            flat = int(torch.nonzero(differ.reshape(-1))[0].item())
            where = [int(i) for i in torch.unravel_index(torch.tensor(flat), expected.shape)]
            verdict.fail(f"{case} in {variant.name}: the lookup is not an exact copy: element {where} is "
                         f"{actual.reshape(-1)[flat].item():.9g} but the table holds "
                         f"{expected.reshape(-1)[flat].item():.9g} ({int(differ.sum())} element(s) differ)")
        # Gradient: row r sums the upstream gradients of the n_r positions that looked it up. Its magnitude is
        # the sum of their absolute values, scaled so that the formula's growth applies per row: growth(n_r).
        growth = tolerance("embedding.backward").growth_factor
        counts = torch.bincount(index.reshape(-1), minlength=weight.shape[0])
        longest = int(counts.max())
        per_row = torch.tensor([growth(int(n)) / growth(longest) for n in counts.tolist()], dtype=torch.float64)
        upstream = run.upstream.abs().reshape(-1, weight.shape[1])
        sums = torch.zeros_like(weight).index_add_(0, index.reshape(-1), upstream)
    verdict.compare(f"{case}, weight gradient", run.grads[0], run.ref_grads[0], variant, op="embedding.backward",
                    reduction_length=longest, magnitude=sums * per_row.unsqueeze(-1))
