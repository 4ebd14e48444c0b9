"""Fleet diagnosis over synthetic reports: which node each rule singles out, and which it must leave alone."""

import pytest

from acceldoctor.baseline.baseline import build_baseline
from acceldoctor.fleet.diagnose import diagnose
from acceldoctor.fleet.rules import load_diagnose_rules
from acceldoctor.report.model import DeviceInfo, HostInfo, Metric, Report, Result, Status

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
# A healthy fleet's spread: within 3% of 700 TFLOP/s.
HEALTHY = [700, 690, 712, 705, 681, 698, 709]


def _report(node: str, tflops: float, *, model: str = H100, torch: str = "2.13.0", status: Status = Status.PASS,
            efficiency: float = 0.7, latency_us: float = 10.0) -> Report:
    return Report(
        run_id=f"run-{node}-{tflops}", started_at="2026-01-01T00:00:00+00:00",
        host=HostInfo(hostname=node, os="Linux", python="3.12", torch=torch, stack={"cuda": "12.8"}),
        devices=[DeviceInfo(id="cuda:0", name=model, vendor="NVIDIA")],
        results=[
            Result(check="performance.gemm", device="cuda:0", status=status, message="GEMM is as it is.",
                   doc="performance.gemm",
                   metrics=[Metric(name="tflops", value=tflops, unit="TFLOP/s", dtype="bfloat16"),
                            Metric(name="efficiency", value=efficiency, unit="ratio", dtype="bfloat16")]),
            Result(check="performance.launch_latency", device="cuda:0", status=Status.PASS, message="fine.",
                   doc="performance.launch_latency",
                   metrics=[Metric(name="sync_round_trip", value=latency_us, unit="us")]),
        ])


@pytest.fixture
def rules():
    return load_diagnose_rules()


def _flagged(diagnosis):
    return {(f.node, f.rule) for f in diagnosis.findings}


def test_a_node_25_percent_slower_among_healthy_ones_is_singled_out(rules):
    reports = [_report(f"node-{i}", v) for i, v in enumerate(HEALTHY)] + [_report("slow", 700 * 0.75)]
    diagnosis = diagnose(reports, rules)
    assert _flagged(diagnosis) == {("slow", "fleet-outlier")}
    assert diagnosis.flagged_nodes == ["slow"] and diagnosis.exit_code == 1
    [finding] = diagnosis.findings
    assert (finding.check, finding.metric, finding.dtype, finding.value) == ("performance.gemm", "tflops",
                                                                             "bfloat16", 525)
    assert finding.reference == pytest.approx(700, rel=0.01)
    assert "25% worse than the median" in finding.message and "8 NVIDIA H100" in finding.message


def test_a_latency_far_above_the_fleet_is_an_outlier_too(rules):
    reports = [_report(f"node-{i}", v) for i, v in enumerate(HEALTHY)] + [_report("laggy", 700, latency_us=40)]
    assert _flagged(diagnose(reports, rules)) == {("laggy", "fleet-outlier")}


def test_a_healthy_fleet_and_a_faster_node_are_not_flagged(rules):
    reports = [_report(f"node-{i}", v) for i, v in enumerate(HEALTHY)] + [_report("fast", 900)]
    diagnosis = diagnose(reports, rules)
    assert diagnosis.findings == [] and diagnosis.exit_code == 0
    [group] = [g for g in diagnosis.groups if g.metric.metric == "tflops"]
    assert (group.devices, group.median) == (8, 702.5)


def test_devices_are_compared_only_within_their_model_and_software(rules):
    h100 = [_report(f"h-{i}", v) for i, v in enumerate(HEALTHY[:4])]
    a100 = [_report(f"a-{i}", v * 0.4, model=A100) for i, v in enumerate(HEALTHY[:4])]
    upgraded = [_report(f"u-{i}", v * 0.8, torch="2.14.0") for i, v in enumerate(HEALTHY[:3])]
    diagnosis = diagnose(h100 + a100 + upgraded, rules)
    assert diagnosis.findings == []
    assert {(g.model, g.software.split(",")[0], g.devices) for g in diagnosis.groups if g.metric.metric == "tflops"} \
        == {(H100, "torch 2.13.0", 4), (A100, "torch 2.13.0", 4), (H100, "torch 2.14.0", 3)}


def test_too_small_a_group_is_not_judged_as_a_fleet(rules):
    reports = [_report("a", 700), _report("b", 300)]
    assert diagnose(reports, rules).findings == []


def test_one_slow_repeat_of_a_node_does_not_make_it_an_outlier(rules):
    reports = [_report(f"node-{i}", v) for i, v in enumerate(HEALTHY)]
    reports += [_report("node-0", 400), _report("node-0", 702)]  # node-0: 700, 400, 702 -> median 700
    assert diagnose(reports, rules).findings == []


def test_a_node_whose_check_failed_is_defective_and_one_that_errored_is_warned(rules):
    reports = [_report(f"node-{i}", v) for i, v in enumerate(HEALTHY[:3])]
    reports += [_report("broken", 700, status=Status.FAIL), _report("odd", 700, status=Status.ERROR)]
    diagnosis = diagnose(reports, rules)
    assert _flagged(diagnosis) == {("broken", "check-problem"), ("odd", "check-error")}
    assert diagnosis.flagged_nodes == ["broken"]
    broken = next(f for f in diagnosis.findings if f.node == "broken")
    assert broken.severity == "fail" and "performance.gemm reported fail" in broken.message
    odd = next(f for f in diagnosis.findings if f.node == "odd")
    assert odd.severity == "warn"


def test_low_efficiency_against_the_spec_sheet_warns(rules):
    reports = [_report(f"node-{i}", v) for i, v in enumerate(HEALTHY[:3])] + [_report("meh", 700, efficiency=0.3)]
    diagnosis = diagnose(reports, rules)
    assert _flagged(diagnosis) == {("meh", "low-efficiency")}
    assert diagnosis.findings[0].severity == "warn" and diagnosis.exit_code == 0


def test_against_a_baseline_a_whole_fleet_that_regressed_is_flagged(rules):
    baseline = build_baseline([_report(f"old-{i}", v) for i, v in enumerate(HEALTHY)])
    # Every node lost 20% (say a driver upgrade): no node is an outlier among its peers, but all are below baseline.
    reports = [_report(f"node-{i}", v * 0.8) for i, v in enumerate(HEALTHY)]
    without = diagnose(reports, rules)
    assert without.findings == [] and without.skipped_rules == ["below-baseline (no --baseline given)"]
    diagnosis = diagnose(reports, rules, baseline)
    assert {rule for _, rule in _flagged(diagnosis)} == {"below-baseline"}
    assert diagnosis.flagged_nodes == sorted(f"node-{i}" for i in range(len(HEALTHY)))
    assert all("against a baseline of 700 TFLOP/s (-" in f.message and f.reference == 700 for f in diagnosis.findings)
