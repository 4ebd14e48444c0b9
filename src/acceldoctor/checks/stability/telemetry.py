"""stability.telemetry: what the device says about itself while it works: heat, power, clocks, throttling, ECC,
Xid and health events (judged over the whole run by `acceldoctor stress`; as a check, over a few seconds)."""

from __future__ import annotations

import time

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.devices.telemetry import open_telemetry
from acceldoctor.devices.telemetry.events import CHECK, judge_telemetry
from acceldoctor.stress.device_process import pci_bus_id


@register_check(
    id=CHECK,
    title="Telemetry: no hardware error events, no new uncorrectable ECC errors, no throttling by heat or power",
    levels=(),  # run by `acceldoctor stress`, which samples the device once per interval while it burns
    timeout_s=60.0,
    doc=CheckDoc(
        verifies=("Once per interval the device's own telemetry is read: temperature, power and its limit, clocks, "
                  "throttle reasons, corrected and uncorrected ECC counts, Xid (NVIDIA) or error-code (Ascend) events "
                  "and health. Read through NVML (`pip install nvidia-ml-py`) for NVIDIA, amdsmi for AMD and "
                  "`npu-smi` for Ascend; the CPU and Intel GPUs have no reader, and the result says so."),
        why=("A device can compute correctly and still be failing: throttling by heat or power explains lost "
             "throughput, and a new uncorrectable ECC error or an Xid during a burn is the hardware reporting a "
             "fault that a job would meet as a crash or a hang hours later."),
        failure_means=("`fail`: the device reported a hardware error event, a new uncorrectable ECC error or a "
                       "health other than OK during the run. `warn`: heat or power held its clocks back in more than "
                       "one interval (applications clocks an administrator set do not count). `skip`: no telemetry "
                       "could be read, with the reason."),
        remedy=("For an error event or ECC error: look the code up with `acceldoctor explain` or `acceldoctor doc`, "
                "drain the node and hand the report to the vendor. For throttling: check cooling, airflow, fan "
                "health and the power cap (`nvidia-smi -q -d PERFORMANCE,POWER`, `amd-smi metric`, "
                "`npu-smi info -t power`)."),
    ),
    params=(Param("duration_s", 5.0, "Seconds of sampling, one reading per second.", minimum=1),),
)
def check_telemetry(ctx: CheckContext) -> CheckOutcome:
    device = str(ctx.device)
    source, reason = open_telemetry(device, pci_bus_id(ctx.device))
    if source is None:
        return judge_telemetry(device, [], reason)
    samples = []
    begin = time.monotonic()
    with source:
        while (elapsed := time.monotonic() - begin) < float(ctx.params["duration_s"]):
            samples.append({**source.read().as_dict(), "t_s": round(elapsed, 3)})
            time.sleep(1.0)
    return judge_telemetry(device, samples)
