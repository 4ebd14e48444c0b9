"""correctness.cross_entropy: F.cross_entropy with class indices, ignore_index, label smoothing; loss and grad."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._grad import Grad, run_both, split_magnitude, unsupported_dtype
from acceldoctor.checks.correctness._inputs import draw
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.faults import suspended

IGNORE = -100
# (rows, vocab, logit scale, reduction, label smoothing, ignore_index): LLM-sized vocabularies, large logits.
# Label smoothing stays with small sums: PyTorch's composite implementation stores the sum of all
# log-probabilities (over the vocabulary, and over the rows for 'mean') in the input dtype, which overflows
# fp16 (an inf loss) beyond about 65504 / |log p| terms, and smoothing / V falls into fp16's subnormal range
# for large vocabularies; that is a framework limit, not the device's.
CASES = {
    "quick": [(3, 32003, 1.0, "mean", 0.0, IGNORE), (17, 129, 100.0, "none", 0.0, IGNORE),
              (9, 1001, 3.0, "none", 0.1, IGNORE), (13, 257, 1.0, "mean", 0.1, 0), (1, 2, 1.0, "none", 0.0, IGNORE)],
    "standard": [(3, 32003, 1.0, "mean", 0.0, IGNORE), (17, 129, 100.0, "none", 0.0, IGNORE),
                 (9, 1001, 3.0, "none", 0.1, IGNORE), (13, 257, 1.0, "mean", 0.1, 0),
                 (1, 2, 1.0, "none", 0.0, IGNORE), (16, 32003, 3.0, "none", 0.0, IGNORE),
                 (8, 50257, 100.0, "mean", 0.0, IGNORE), (128, 1021, 1.0, "none", 0.2, 3)],
}


def _reference(x, target, reduction, smoothing, ignore_index):
    """Cross entropy written out: -(1 - e) log p[t] - e mean_j log p[j], ignored rows dropped from the mean."""
    logp = torch.log_softmax(x, dim=-1)
    keep = target != ignore_index
    picked = logp.gather(-1, torch.where(keep, target, 0).unsqueeze(-1)).squeeze(-1)
    loss = -(1 - smoothing) * picked - smoothing * logp.mean(-1)
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    return loss if reduction == "none" else loss.sum() / keep.sum()


def _device_cross_entropy(x, target, reduction, smoothing, ignore_index):
    return F.cross_entropy(x, target, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)


@register_check(
    id="correctness.cross_entropy",
    title="Cross-entropy loss and its gradient are right for large vocabularies and large logits",
    levels=("quick", "standard", "full"),
    tolerances=("cross_entropy", "cross_entropy.backward"),
    params=(Param("cases", "standard", "Which shape set to sweep.", {"quick": "quick"}, choices=tuple(CASES)),),
    doc=CheckDoc(
        verifies="`F.cross_entropy` with class-index targets over vocabularies from 2 to 50257 classes "
                 "(32003: not a multiple of any block size), logits scaled x100, ignored rows (ignore_index "
                 "-100 and a real class used as padding), label smoothing, and reductions 'none' and 'mean', "
                 "in fp32, bf16 and fp16. The loss and the gradient of the logits are compared with float64 "
                 "CPU results from the same rounded logits.",
        why="The loss is where training starts: a wrong loss or gradient poisons every step that follows. "
            "Loss kernels are fused (log-softmax + gather + reduction), frequently rewritten for large "
            "vocabularies, and get ignore_index, label smoothing or the 'mean' denominator subtly wrong.",
        failure_means="The device computed a wrong loss or logit gradient for the named case and dtype; "
                      "typical causes are an overflowing log-sum-exp for large logits, ignored rows counted in "
                      "the mean, or a broken reduction across a long vocabulary. Training on this stack "
                      "follows a wrong gradient.",
        remedy="Re-run with `--select correctness.cross_entropy`; try computing the loss in float32 (cast the "
               "logits) to see whether a low-precision kernel is at fault; report the case to the vendor "
               "with the JSON report attached.",
    ),
)
def check_cross_entropy(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("cross_entropy")
    gen = ctx.generator(67)
    for variant in ctx.variants():
        try:
            for rows, vocab, scale, reduction, smoothing, ignore in CASES[ctx.params["cases"]]:
                target = torch.randint(vocab, (rows,), generator=gen)
                x = draw((rows, vocab), gen, scale=scale)
                if rows > 2:
                    target[1] = ignore  # an ignored row (padding)
                    target[2] = int(x[2].argmax())  # a confident, correct row: the loss cancels to almost 0
                case = (f"cross_entropy {rows}x{vocab} reduction={reduction}"
                        + (f" label_smoothing={smoothing:g}" if smoothing else "")
                        + (f" ignore_index={ignore}" if ignore != IGNORE else "")
                        + (f" logits x{scale:g}" if scale != 1 else ""))
                run = run_both(ctx, variant, _device_cross_entropy, _reference,
                               [Grad(x), target, reduction, smoothing, ignore], gen)
                _judge(verdict, variant, case, run)
        except (RuntimeError, NotImplementedError) as exc:
            if not unsupported_dtype(exc, verdict, "cross_entropy", variant):
                raise
    return verdict.outcome()


def _judge(verdict: Verdict, variant, case: str, run) -> None:
    x, target, reduction, smoothing, ignore = run.inputs
    vocab = x.shape[-1]
    with suspended():
        keep = (target != ignore).to(torch.float64)
        m = x.amax(-1, keepdim=True)
        log_s = torch.logsumexp(x, -1, keepdim=True) - m
        # Error scale of log p_j in the dtype: forming x_j - max, log S, and S or log S stored in the dtype.
        z_scale = (x - m).abs() + log_s + 1
        onehot = torch.zeros_like(x).scatter_(-1, torch.where(target != ignore, target, 0).unsqueeze(-1), 1.0)
        weights = (1 - smoothing) * onehot + smoothing / vocab  # loss = -sum_j weights_j log p_j
        logp_abs = (torch.log_softmax(x, -1)).abs()
        # Loss: the weighted log-probabilities (elementwise), the float32 row sum S and the float32 smoothing
        # sum over the vocabulary (reductions).
        row_local = (weights * z_scale).sum(-1) * keep
        row_reduce = (weights * (1 + logp_abs)).sum(-1) * keep
        out_mag = split_magnitude("cross_entropy", vocab, variant, row_local, row_reduce)
        if reduction == "mean":
            out_mag = out_mag.sum() / keep.sum()
        # dx = g (p - weights): p as accurate as exp of the rounded log p, the float32 row sums (S, and the
        # sum of the upstream gradient over the row, of which the smoothing term repeats V equal addends).
        p = torch.softmax(x, -1)
        g = run.upstream.abs() * (keep / keep.sum() if reduction == "mean" else keep)
        grad_mag = split_magnitude("cross_entropy.backward", vocab, variant,
                                   g.unsqueeze(-1) * (p * z_scale + weights), g.unsqueeze(-1) * p)
    verdict.compare(case, run.out, run.ref_out, variant, op="cross_entropy", reduction_length=vocab,
                    magnitude=out_mag)
    verdict.compare(f"{case}, gradient", run.grads[0], run.ref_grads[0], variant, op="cross_entropy.backward",
                    reduction_length=vocab, magnitude=grad_mag)
