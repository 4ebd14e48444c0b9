"""Baselines: median/MAD across reports, rate/time metrics only; judging a result against a baseline."""

import pytest

from acceldoctor.baseline.baseline import Baseline, build_baseline, judge_against_baseline, load_baseline
from acceldoctor.baseline.rules import BaselineDataError, BaselineRules, load_baseline_rules
from acceldoctor.report.model import DeviceInfo, HostInfo, Metric, Report, Result, Status

GPU = "NVIDIA H100 80GB HBM3"


def _report(run_id: str, tflops: float, bandwidth: float, latency_us: float, *, name: str = GPU,
            status: Status = Status.PASS) -> Report:
    return Report(
        run_id=run_id, started_at="2026-01-01T00:00:00+00:00",
        host=HostInfo(hostname="n1", os="Linux", python="3.12", torch="2.13.0", stack={"cuda": "12.8"}),
        devices=[DeviceInfo(id="cuda:0", name=name, vendor="NVIDIA")],
        results=[
            Result(check="performance.gemm", device="cuda:0", status=status, message="ok", doc="performance.gemm",
                   metrics=[Metric(name="tflops", value=tflops, unit="TFLOP/s", dtype="bfloat16"),
                            Metric(name="tflops_spread", value=0.01, unit="ratio", dtype="bfloat16"),
                            Metric(name="peak_size", value=8192, unit="n", dtype="bfloat16"),
                            Metric(name="efficiency", value=0.7, unit="ratio", dtype="bfloat16")]),
            Result(check="performance.memory_bandwidth", device="cuda:0", status=status, message="ok",
                   doc="performance.memory_bandwidth",
                   metrics=[Metric(name="copy_bandwidth", value=bandwidth, unit="GB/s"),
                            Metric(name="copy_spread", value=0.02, unit="ratio")]),
            Result(check="interconnect.all_reduce", device="cuda:0", status=status, message="ok",
                   doc="interconnect.all_reduce",
                   metrics=[Metric(name="latency", value=latency_us, unit="us", dtype="float32"),
                            Metric(name="world_size", value=8, unit="count")]),
        ],
    )


def test_median_and_mad_over_every_report_and_only_rates_and_times():
    reports = [_report("a", 700, 3000, 10), _report("b", 710, 3100, 12), _report("c", 600, 2000, 30),
               _report("d", 705, 3050, 11), _report("e", 800, 3080, 11)]
    baseline = build_baseline(reports)
    assert baseline.schema_ == "acceldoctor.baseline/1"
    assert baseline.run_ids == ["a", "b", "c", "d", "e"]
    assert baseline.device_models == [GPU]
    assert [s.model_dump() for s in baseline.software] == [{"torch": "2.13.0", "stack": {"cuda": "12.8"}}]
    keys = {(e.check, e.metric, e.dtype) for e in baseline.metrics}
    assert keys == {("performance.gemm", "tflops", "bfloat16"),
                    ("performance.memory_bandwidth", "copy_bandwidth", None),
                    ("interconnect.all_reduce", "latency", "float32")}
    gemm = baseline.entry("performance.gemm", GPU, "tflops", "bfloat16")
    # values 600 700 705 710 800: median 705, |dev| 105 5 0 5 95 -> MAD 5
    assert (gemm.median, gemm.mad, gemm.n, gemm.unit, gemm.direction) == (705, 5, 5, "TFLOP/s", "higher")
    bw = baseline.entry("performance.memory_bandwidth", GPU, "copy_bandwidth", None)
    assert (bw.median, bw.mad, bw.direction) == (3050, 50, "higher")  # |dev| 50 50 1050 0 30
    lat = baseline.entry("interconnect.all_reduce", GPU, "latency", "float32")
    assert (lat.median, lat.mad, lat.unit, lat.direction) == (11, 1, "us", "lower")


def test_device_kinds_are_kept_apart_and_unmeasured_results_left_out():
    baseline = build_baseline([_report("a", 700, 3000, 10), _report("b", 300, 1000, 50, name="NVIDIA A10"),
                               _report("c", 1, 1, 1, status=Status.ERROR)])
    assert baseline.device_models == [GPU, "NVIDIA A10"]
    assert baseline.entry("performance.gemm", GPU, "tflops", "bfloat16").median == 700
    assert baseline.entry("performance.gemm", "NVIDIA A10", "tflops", "bfloat16").n == 1
    assert baseline.entry("performance.gemm", "NVIDIA A10", "tflops", None) is None


def test_no_baselinable_metric_is_an_error():
    report = _report("a", 700, 3000, 10)
    for result in report.results:
        result.metrics = [m for m in result.metrics if m.unit in ("ratio", "n", "count")]
    with pytest.raises(ValueError, match="no rate or time metric"):
        build_baseline([report])


def test_baseline_round_trips_through_json(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(build_baseline([_report("a", 700, 3000, 10)]).to_json())
    assert load_baseline(path).entry("performance.gemm", GPU, "tflops", "bfloat16").median == 700
    (tmp_path / "r.json").write_text(_report("a", 700, 3000, 10).to_json())
    with pytest.raises(BaselineDataError, match="not a baseline"):
        load_baseline(tmp_path / "r.json")


@pytest.fixture
def baseline() -> Baseline:
    return build_baseline([_report("a", 100, 3000, 10)])


@pytest.fixture
def rules() -> BaselineRules:
    return load_baseline_rules()


def _gemm(value: float, status: Status = Status.PASS) -> Result:
    metrics = [Metric(name="tflops", value=value, unit="TFLOP/s", dtype="bfloat16"),
               Metric(name="efficiency", value=0.7, unit="ratio", dtype="bfloat16")]
    return Result(check="performance.gemm", device="cuda:0", status=status, message="GEMM throughput is fine.",
                  doc="performance.gemm", metrics=metrics)


def test_packaged_rules_defaults(rules):
    assert (rules.default.fail_drop, rules.default.warn_drop) == (0.10, 0.05)
    assert "noise" in rules.about.lower()


def test_25_percent_lower_tflops_fails_naming_measured_baseline_and_change(baseline, rules):
    judged = judge_against_baseline(_gemm(75), GPU, baseline, rules)
    assert judged.status is Status.FAIL
    assert "tflops" in judged.message and "bfloat16" in judged.message
    assert "75 TFLOP/s" in judged.message and "100 TFLOP/s" in judged.message and "-25%" in judged.message
    assert judged.metrics[0].baseline == 100
    assert judged.metrics[1].baseline is None  # a ratio has no baseline entry: left alone


def test_7_percent_lower_warns(baseline, rules):
    judged = judge_against_baseline(_gemm(93), GPU, baseline, rules)
    assert judged.status is Status.WARN
    assert "-7%" in judged.message


@pytest.mark.parametrize("value", [100, 130, 97])
def test_equal_better_or_within_noise_is_unchanged(baseline, rules, value):
    result = _gemm(value)
    judged = judge_against_baseline(result, GPU, baseline, rules)
    assert (judged.status, judged.message) == (result.status, result.message)
    assert judged.metrics[0].baseline == 100
    assert result.metrics[0].baseline is None  # the input is not modified


def test_latency_25_percent_higher_fails(baseline, rules):
    result = Result(check="interconnect.all_reduce", device="cuda:0", status=Status.PASS, message="ok",
                    doc="interconnect.all_reduce",
                    metrics=[Metric(name="latency", value=12.5, unit="us", dtype="float32")])
    judged = judge_against_baseline(result, GPU, baseline, rules)
    assert judged.status is Status.FAIL
    assert "12.5 us" in judged.message and "10 us" in judged.message and "+25%" in judged.message


def test_other_device_model_or_no_entry_is_left_alone(baseline, rules):
    result = _gemm(10)
    assert judge_against_baseline(result, "NVIDIA A10", baseline, rules) == result


def test_status_never_gets_better(baseline, rules):
    assert judge_against_baseline(_gemm(75, Status.CRASH), GPU, baseline, rules).status is Status.CRASH
    judged = judge_against_baseline(_gemm(93, Status.FAIL), GPU, baseline, rules)
    assert (judged.status, judged.message) == (Status.FAIL, "GEMM throughput is fine.")


def test_per_metric_override(baseline):
    rules = BaselineRules.model_validate({
        "schema": "acceldoctor.baseline_rules/1", "about": "noise measured on a test machine",
        "default": {"fail_drop": 0.1, "warn_drop": 0.05},
        "overrides": [{"check": "performance.gemm", "metric": "tflops", "fail_drop": 0.3, "warn_drop": 0.2,
                       "reason": "this metric is noisier"}]})
    assert judge_against_baseline(_gemm(75), GPU, baseline, rules).status is Status.WARN


def test_rules_file_is_checked(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("schema: acceldoctor.baseline_rules/1\nabout: too short\n"
                    "default: {fail_drop: 0.05, warn_drop: 0.1}\n")
    with pytest.raises(BaselineDataError, match="invalid"):
        load_baseline_rules(path)


def test_noisy_baseline_widens_the_limits_and_says_so(rules):
    # Baseline values 80, 100, 120: MAD 20 (20% of the median) -> limits widen to 3 x 1.4826 x 20% = 89%.
    noisy = build_baseline([_report(name, v, 3000, 10) for name, v in (("a", 80), ("b", 100), ("c", 120))])
    assert noisy.entry("performance.gemm", GPU, "tflops", "bfloat16").mad == 20
    assert judge_against_baseline(_gemm(75), GPU, noisy, rules).status is Status.PASS
    judged = judge_against_baseline(_gemm(5), GPU, noisy, rules)
    assert judged.status is Status.FAIL
    assert "89% fail limit" in judged.message and "widened from 10%" in judged.message


def test_quiet_baseline_keeps_the_rule_limits(rules):
    quiet = build_baseline([_report(name, v, 3000, 10) for name, v in (("a", 99), ("b", 100), ("c", 101))])
    judged = judge_against_baseline(_gemm(75), GPU, quiet, rules)
    assert judged.status is Status.FAIL and "10% fail limit for a regression." in judged.message
    off = rules.model_copy(update={"noise_multiple": 0.0})
    noisy = build_baseline([_report(name, v, 3000, 10) for name, v in (("a", 80), ("b", 100), ("c", 120))])
    assert judge_against_baseline(_gemm(75), GPU, noisy, off).status is Status.FAIL


def test_overrides_match_metric_globs_and_device_types(baseline):
    rules = BaselineRules.model_validate({
        "schema": "acceldoctor.baseline_rules/1", "about": "noise measured on a test machine",
        "default": {"fail_drop": 0.1, "warn_drop": 0.05},
        "overrides": [{"check": "performance.gemm", "metric": "tflo*", "device_types": ["cpu"], "fail_drop": 0.5,
                       "warn_drop": 0.4, "reason": "a shared CPU is noisier"}]})
    assert rules.for_metric("performance.gemm", "tflops", "cpu").fail_drop == 0.5
    assert rules.for_metric("performance.gemm", "tflops", "cuda").fail_drop == 0.1
    assert rules.for_metric("performance.gemm", "peak_size", "cpu").fail_drop == 0.1
    on_gpu = judge_against_baseline(_gemm(75), GPU, baseline, rules)
    assert on_gpu.status is Status.FAIL
    on_cpu = judge_against_baseline(_gemm(75).model_copy(update={"device": "cpu"}), GPU, baseline, rules)
    assert on_cpu.status is Status.PASS


def test_packaged_overrides_loosen_only_the_cpu_figures_that_measured_noisy(rules):
    assert rules.for_metric("performance.memory_bandwidth", "triad_bandwidth", "cpu").fail_drop > 0.10
    assert rules.for_metric("performance.memory_bandwidth", "triad_bandwidth", "cuda") == rules.default
    assert rules.for_metric("performance.gemm", "tflops", "cuda") == rules.default
    # A 25% slower matrix product lowers throughput by 20%: it must still fail on the CPU.
    assert rules.for_metric("performance.gemm", "tflops", "cpu").fail_drop < 0.2
