"""stability.device_agreement: every device computes the same product; the one that differs is named (run by
`acceldoctor stress` over all its devices; as a check, one device against the float64 golden)."""

from __future__ import annotations

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.registry import CheckDoc, register_check
from acceldoctor.stress.agreement import AGREEMENT_SIZE, agreement_product, judge_agreement


@register_check(
    id="stability.device_agreement",
    title="Cross-device agreement: the same seeded product on every device; the odd device out is named",
    levels=(),  # run by `acceldoctor stress`, which has every device at hand
    timeout_s=60.0,
    tolerances=("matmul",),
    doc=CheckDoc(
        verifies=(f"Every device under stress computes the same seeded {AGREEMENT_SIZE}x{AGREEMENT_SIZE} float32 "
                  "product once. Each result is compared with the float64 golden on the CPU within the matmul "
                  "tolerance; among three or more devices of the same model, a device whose bits differ from the "
                  "majority is also named."),
        why=("A device with a consistently wrong unit repeats its wrong result perfectly, so comparing a device with "
             "itself (the GEMM burn) cannot see it; a second opinion can. Devices of the same model with the same "
             "software run the same kernels and must give the same bits."),
        failure_means=("`fail`: the named device's product is wrong against the float64 golden while the others "
                       "agree with it. `warn`: within rounding of the golden, but its bits differ from the other "
                       "devices of its model (a different kernel, clock or firmware)."),
        remedy=("Compare the devices' driver and firmware versions (`acceldoctor devices`); for a `fail`, run "
                "`acceldoctor check --level full -d DEVICE` on the named device and take it out of service if "
                "correctness checks fail."),
    ),
)
def check_device_agreement(ctx: CheckContext) -> CheckOutcome:
    device = str(ctx.device)
    return judge_agreement({device: agreement_product(ctx.device)}, {device: device})[device]
