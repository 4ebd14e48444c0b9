"""The results of a stress run: per device, one result per workload's check and the telemetry verdict (written as
soon as the device ends), and the cross-device agreement (written at the end). A device that hung, died or raised
gets `timeout`/`crash`/`error` on the check it was in; its other checks are judged on what it did before."""

from __future__ import annotations

from collections.abc import Callable

from acceldoctor.checks.context import CheckOutcome
from acceldoctor.devices.telemetry.events import CHECK as TELEMETRY_CHECK
from acceldoctor.devices.telemetry.events import judge_telemetry
from acceldoctor.report.model import Result, Status
from acceldoctor.stress.agreement import CHECK as AGREEMENT_CHECK
from acceldoctor.stress.agreement import judge_agreement
from acceldoctor.stress.device_process import AGREEMENT_RUNNING
from acceldoctor.stress.verdict import drift_limits, judge_gemm, judge_memory, judge_train
from acceldoctor.stress.workloads.train_loop import DEFAULT_RELATIVE_TOLERANCE, RELATIVE_TOLERANCE

# Each `--workload` kind's check, and how its verdict is judged from a device's samples.
KIND_CHECKS = {"gemm": "stability.gemm_burn", "memory": "stability.memory_soak", "train": "stability.train_loop"}
JUDGES: dict[str, Callable[[str, list[dict]], CheckOutcome]] = {
    "stability.gemm_burn": lambda device, samples: judge_gemm(device, samples, *drift_limits(_device_type(device))),
    "stability.memory_soak": judge_memory,
    "stability.train_loop": lambda device, samples: judge_train(
        device, samples, RELATIVE_TOLERANCE.get(_device_type(device), DEFAULT_RELATIVE_TOLERANCE)),
}


def _device_type(device: str) -> str:
    return device.split(":", 1)[0]


def _done(watch) -> str:
    return f"after {watch.samples[-1]['t_s']:.0f} s" if watch.samples else "before its first sample"


def _stopped(device: str, watch, check: str) -> Result:
    """The result of the check `device` was in when its process hung, died or raised."""
    if watch.ended == "timeout":
        status, message = Status.TIMEOUT, (f"{device} stopped answering {_done(watch)}: no sample for longer than "
                                           "the watchdog allows; it was stopped while the other devices went on.")
    elif watch.ended == "overran":
        status, message = Status.TIMEOUT, (f"{device} had not finished when the run's time was up ({_done(watch)}); "
                                           "it was stopped.")
    elif watch.ended.startswith("crash"):
        how = watch.ended.split(": ", 1)[1]
        status, message = Status.CRASH, f"{device}'s burn process died ({how}) {_done(watch)}."
    else:
        status, message = Status.ERROR, f"the burn could not run on {device}: {watch.ended.split(': ', 1)[1]}."
    return Result(check=check, device=device, status=status, message=message, doc=check)


def _failed_check(watch, checks: list[str]) -> str | None:
    """The check of the workload running when the device stopped (the agreement product runs first); None when the
    run was interrupted or the device finished."""
    if watch.ended in ("done", "interrupted"):
        return None
    index = watch.failed_in
    if index == AGREEMENT_RUNNING:
        return AGREEMENT_CHECK
    if index is not None and 0 <= index < len(watch.workloads):
        return watch.workloads[index][1]
    return checks[0]  # still starting up: the first workload is what did not run


def device_results(device: str, watch, kinds: tuple[str, ...]) -> list[Result]:
    checks = [KIND_CHECKS[k] for k in kinds if k in KIND_CHECKS]
    culprit = _failed_check(watch, checks)
    seconds = round(watch.samples[-1]["t_s"], 3) if watch.samples else 0.0
    results = []
    for check in [*checks, TELEMETRY_CHECK]:
        if check == culprit:
            results.append(_stopped(device, watch, check))
            continue
        if check == TELEMETRY_CHECK:
            readings = watch.telemetry.readings() if watch.telemetry is not None else []
            outcome = judge_telemetry(device, readings, None if watch.telemetry is not None else watch.telemetry_reason)
        else:
            outcome = JUDGES[check](device, watch.samples)
        if watch.ended != "done" and outcome.status == Status.PASS:
            why = "the run was interrupted" if watch.ended == "interrupted" else f"{device} stopped during {culprit}"
            outcome = CheckOutcome(Status.SKIP, f"not judged to the end: {why} after {seconds:.0f} s; up to then: "
                                   f"{outcome.message}", outcome.metrics)
        results.append(Result(check=check, device=device, status=outcome.status, message=outcome.message,
                              metrics=outcome.metrics, duration_s=seconds, doc=check))
    if culprit == AGREEMENT_CHECK:
        results.append(_stopped(device, watch, AGREEMENT_CHECK))
    return results


def agreement_results(watches: dict, models: dict[str, str]) -> list[Result]:
    """Every device's agreement result, once all have sent their product or stopped."""
    outcomes = judge_agreement({d: w.agreement for d, w in watches.items() if w.agreement is not None}, models)
    results = []
    for device, watch in watches.items():
        if _failed_check(watch, ["-"]) == AGREEMENT_CHECK:
            continue  # reported with the device, as the check it stopped in
        outcome = outcomes.get(device) or CheckOutcome(
            Status.SKIP, f"{device} sent no product to compare: it stopped before computing it.", [])
        results.append(Result(check=AGREEMENT_CHECK, device=device, status=outcome.status, message=outcome.message,
                              metrics=outcome.metrics, doc=AGREEMENT_CHECK))
    return results
