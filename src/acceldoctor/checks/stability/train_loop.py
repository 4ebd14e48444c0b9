"""stability.train_loop: the same few training steps, from the same weights and data, must retrace their losses."""

from __future__ import annotations

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.checks.stability._burn import burn_for_check
from acceldoctor.stress.verdict import judge_train
from acceldoctor.stress.workloads.train_loop import STEPS_PER_PASS, TrainLoop


@register_check(
    id="stability.train_loop",
    title="Training loop: repeated training steps from the same start retrace the recorded loss trajectory",
    levels=("full",),
    timeout_s=120.0,
    doc=CheckDoc(
        verifies=(f"A small decoder-only transformer takes {STEPS_PER_PASS} AdamW steps on fixed data; the losses of "
                  "this first pass are recorded, then the weights are reset and the pass repeated for the whole "
                  "duration. Every loss must equal the recorded one: bit for bit on the CPU, within a relative 1e-4 "
                  "on accelerators (attention and embedding backward kernels may add in varying order). A NaN or "
                  "infinite loss fails."),
        why=("A training step runs attention, layer norm, GELU, cross-entropy, embedding gradients and the "
             "optimizer's elementwise kernels that a GEMM burn never touches; a device that corrupts one of them "
             "now and then shows as a loss spike or a run that diverges hours in."),
        failure_means=("`fail`: a loss left the recorded trajectory (or was not finite): some kernel of the step "
                       "computed a different result from the same inputs."),
        remedy=("Run `acceldoctor check --level full -d DEVICE` to find which operation is wrong, and `acceldoctor "
                "stress --workload train -d DEVICE` for longer to see how often it happens."),
    ),
    params=(Param("duration_s", 10.0, "Seconds of repeated training passes.", minimum=1),),
)
def check_train_loop(ctx: CheckContext) -> CheckOutcome:
    loop = TrainLoop(ctx.device, seed=ctx.seed)
    return judge_train(str(ctx.device), burn_for_check(ctx, [loop]), loop.tolerance)
