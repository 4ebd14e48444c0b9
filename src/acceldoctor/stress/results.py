"""The results of a stress run: per device, one result per workload's check, the cross-device agreement and the
telemetry verdict. A device that hung, died or raised gets `timeout`/`crash`/`error` on the check it was in."""

from __future__ import annotations

from collections.abc import Callable

from acceldoctor.checks.context import CheckOutcome
from acceldoctor.report.model import Result, Status
from acceldoctor.stress.agreement import CHECK as AGREEMENT_CHECK
from acceldoctor.stress.agreement import judge_agreement
from acceldoctor.stress.device_process import AGREEMENT_RUNNING
from acceldoctor.stress.telemetry.events import CHECK as TELEMETRY_CHECK
from acceldoctor.stress.telemetry.events import judge_telemetry
from acceldoctor.stress.verdict import drift_limits, judge_gemm, judge_memory, judge_train
from acceldoctor.stress.workloads.train_loop import DEFAULT_RELATIVE_TOLERANCE, RELATIVE_TOLERANCE

# Each `--workload` kind's check, and how its verdict is judged from a device's samples.
KIND_CHECKS = {"gemm": "stability.gemm_burn", "memory": "stability.memory_soak", "train": "stability.train_loop"}
JUDGES: dict[str, Callable[[str, list[dict]], CheckOutcome]] = {
    "stability.gemm_burn": lambda device, samples: judge_gemm(device, samples, *drift_limits(_type(device))),
    "stability.memory_soak": judge_memory,
    "stability.train_loop": lambda device, samples: judge_train(
        device, samples, RELATIVE_TOLERANCE.get(_type(device), DEFAULT_RELATIVE_TOLERANCE)),
}


def _type(device: str) -> str:
    return device.split(":", 1)[0]


def _stopped(device: str, watch, check: str) -> Result:
    """The result of the check `device` was in when its process hung, died or raised."""
    done = f"after {watch.samples[-1]['t_s']:.0f} s" if watch.samples else "before its first sample"
    if watch.ended == "timeout":
        status, message = Status.TIMEOUT, (f"{device} stopped answering {done}: no sample for longer than the "
                                           "watchdog allows; it was stopped while the other devices went on.")
    elif watch.ended.startswith("crash"):
        status, message = Status.CRASH, f"{device}'s burn process died ({watch.ended.split(': ', 1)[1]}) {done}."
    else:
        status, message = Status.ERROR, f"the burn could not run on {device}: {watch.ended.split(': ', 1)[1]}."
    return Result(check=check, device=device, status=status, message=message, doc=check)


def _failed_check(watch) -> str:
    """The check of the workload running when the device stopped (the agreement product runs first)."""
    index = watch.failed_in
    if index == AGREEMENT_RUNNING:
        return AGREEMENT_CHECK
    if index is not None and 0 <= index < len(watch.workloads):
        return watch.workloads[index][1]
    return KIND_CHECKS["gemm"]  # still starting up: the burn proper is what did not run


def device_results(watches: dict, models: dict[str, str], kinds: tuple[str, ...]) -> list[Result]:
    agreement = judge_agreement({d: w.agreement for d, w in watches.items() if w.agreement is not None}, models)
    results = []
    for device, watch in watches.items():
        stopped = watch.ended != "done"
        culprit = _failed_check(watch) if stopped else None
        seconds = round(watch.samples[-1]["t_s"], 3) if watch.samples else 0.0
        checks = [KIND_CHECKS[k] for k in kinds if k in KIND_CHECKS]
        for check in [*checks, AGREEMENT_CHECK, TELEMETRY_CHECK]:
            if check == culprit:
                results.append(_stopped(device, watch, check))
                continue
            if check == AGREEMENT_CHECK:
                outcome = agreement.get(device) or CheckOutcome(
                    Status.SKIP, f"{device} sent no product to compare: it stopped before computing it.", [])
            elif check == TELEMETRY_CHECK:
                outcome = judge_telemetry(device, [{**s["telemetry"], "t_s": s["t_s"]}
                                                   for s in watch.samples if s.get("telemetry")],
                                          None if watch.telemetry is not None else watch.telemetry_reason)
            else:
                outcome = JUDGES[check](device, watch.samples)
            if stopped and outcome.status == Status.PASS:
                outcome = CheckOutcome(Status.SKIP, f"not judged to the end: {device} stopped during {culprit} "
                                       f"after {seconds:.0f} s; up to then: {outcome.message}", outcome.metrics)
            results.append(Result(check=check, device=device, status=outcome.status, message=outcome.message,
                                  metrics=outcome.metrics, duration_s=seconds, doc=check))
    return results
