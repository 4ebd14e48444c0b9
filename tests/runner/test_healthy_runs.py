"""Five healthy quick runs in a row, with different input seeds, report no problem at all."""

from acceldoctor.checks.registry import select_checks
from acceldoctor.devices.discovery import list_devices, resolve_devices
from acceldoctor.devices.versions import host_info
from acceldoctor.runner.session import plan, run_plan


def test_five_healthy_quick_runs_report_nothing():
    devices = resolve_devices("cpu", list_devices())
    planned = plan(select_checks("quick"), devices)
    assert len(planned) >= 10
    for seed in range(5):
        report = run_plan(planned, level="quick", host=host_info(), devices=devices, seed=seed)
        unhealthy = [(r.check, r.status.value, r.message) for r in report.results if r.status.value != "pass"]
        assert not unhealthy, f"seed {seed}: {unhealthy}"
        assert report.exit_code == 0
