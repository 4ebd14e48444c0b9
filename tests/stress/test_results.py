"""A stress run's results per device when a device finished, hung, died, raised or was interrupted: the stop is
reported on the check it was in, and nothing it did is called a pass it was not."""

from dataclasses import dataclass, field

from acceldoctor.stress.device_process import AGREEMENT_RUNNING, STARTING
from acceldoctor.stress.results import agreement_results, device_results


@dataclass
class _Watch:
    ended: str
    failed_in: int | None = None
    samples: list = field(default_factory=list)
    workloads: list = field(default_factory=list)
    telemetry: object = None
    telemetry_reason: str = "the CPU exposes no device telemetry"
    agreement: object = None


WORKLOADS = [("gemm_fp32", "stability.gemm_burn", ""), ("train_loop", "stability.train_loop", ""),
             ("memory_soak", "stability.memory_soak", "")]


def _sample(t, **errors):
    parts = {name: {"iterations": 3, "wrong_elements": errors.get(name, 0), "nan_elements": 0, "rate": 1.0,
                    "unit": "x"} for name, _, _ in WORKLOADS}
    return {"t_s": float(t), "tflops": 1.0, "workloads": parts}


def _statuses(results):
    return {r.check: r.status.value for r in results}


def test_a_device_that_hung_in_the_memory_soak_gets_the_timeout_there():
    watch = _Watch("timeout", failed_in=2, samples=[_sample(t) for t in range(1, 5)], workloads=WORKLOADS)
    statuses = _statuses(device_results("cuda:0", watch, ("gemm", "memory", "train")))
    assert statuses["stability.memory_soak"] == "timeout"
    assert statuses["stability.gemm_burn"] == statuses["stability.train_loop"] == "skip"  # not judged to the end


def test_corruption_found_before_a_crash_still_fails():
    samples = [_sample(1), _sample(2, gemm_fp32=4)]
    watch = _Watch("crash: killed by SIGSEGV", failed_in=1, samples=samples, workloads=WORKLOADS)
    statuses = _statuses(device_results("cuda:0", watch, ("gemm", "memory", "train")))
    assert statuses["stability.gemm_burn"] == "fail" and statuses["stability.train_loop"] == "crash"


def test_a_device_stuck_at_start_up_is_a_problem_whatever_the_workloads_chosen():
    watch = _Watch("timeout", failed_in=STARTING)
    results = device_results("npu:3", watch, ("memory",))
    assert _statuses(results)["stability.memory_soak"] == "timeout"
    assert any(r.status.is_problem for r in results)


def test_a_hang_in_the_agreement_product_is_reported_there_once():
    watch = _Watch("timeout", failed_in=AGREEMENT_RUNNING)
    device = device_results("xpu:0", watch, ("gemm",))
    assert _statuses(device)["stability.device_agreement"] == "timeout"
    assert not agreement_results({"xpu:0": watch}, {"xpu:0": "Max 1550"})


def test_an_interrupted_run_skips_what_it_cannot_judge_and_names_no_culprit():
    watch = _Watch("interrupted", samples=[_sample(1)], workloads=WORKLOADS)
    results = device_results("cpu", watch, ("gemm", "memory", "train"))
    assert {r.status.value for r in results} == {"skip"}
    assert all("interrupted" in r.message or "telemetry" in r.message for r in results)
