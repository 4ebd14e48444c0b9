"""AMD telemetry through a fake `amdsmi` module, in the shapes its Python API returns across ROCm releases."""

from __future__ import annotations

import sys
import types

import pytest

from acceldoctor.devices.telemetry import open_telemetry


class AmdSmiLibraryException(Exception):
    pass


def fake_amdsmi(*, clock_key: str = "clk", metrics: dict | None = None, violation: dict | None = None,
                power: dict | None = None, unsupported: tuple[str, ...] = ()):
    smi = types.ModuleType("amdsmi")
    smi.AmdSmiLibraryException = AmdSmiLibraryException
    smi.AmdSmiTemperatureType = types.SimpleNamespace(EDGE="edge", HOTSPOT="hotspot", JUNCTION="hotspot")
    smi.AmdSmiTemperatureMetric = types.SimpleNamespace(CURRENT="current")
    smi.AmdSmiClkType = types.SimpleNamespace(GFX="gfx", MEM="mem")
    smi.state = {"bdf": None, "shutdown": 0}

    def supported(name, value):
        if name in unsupported:
            raise AmdSmiLibraryException(f"AMDSMI_STATUS_NOT_SUPPORTED: {name}")
        return value

    def by_bdf(bdf):
        smi.state["bdf"] = bdf
        return f"gpu@{bdf}"

    smi.amdsmi_init = lambda *flags: None
    smi.amdsmi_shut_down = lambda: smi.state.__setitem__("shutdown", smi.state["shutdown"] + 1)
    smi.amdsmi_get_processor_handle_from_bdf = by_bdf
    smi.amdsmi_get_processor_handles = lambda: ["gpu0", "gpu1"]
    hotspot = {"gpu0": 50, "gpu1": 77}  # by handle; the GPU found by address is at 91

    smi.amdsmi_get_temp_metric = lambda h, kind, metric: supported(
        f"temp_{kind}", hotspot.get(h, 91) if kind == "hotspot" else 70)
    smi.amdsmi_get_power_info = lambda h: supported("power", power if power is not None else {
        "current_socket_power": "N/A", "average_socket_power": 540, "gfx_voltage": 800, "power_limit": 560})
    smi.amdsmi_get_power_cap_info = lambda h: supported("power_cap", {"power_cap": 560_000_000})  # microwatts
    smi.amdsmi_get_clock_info = lambda h, kind: supported(
        f"clock_{kind}", {clock_key: 1700 if kind == "gfx" else 1600, "min_clk": 500, "max_clk": 2100})
    smi.amdsmi_get_gpu_total_ecc_count = lambda h: supported(
        "ecc", {"correctable_count": 2, "uncorrectable_count": 1, "deferred_count": 0})
    smi.amdsmi_get_gpu_metrics_info = lambda h: supported("metrics", metrics if metrics is not None else {
        "temperature_hotspot": 91, "throttle_status": 5, "indep_throttle_status": (1 << 0) | (1 << 36)})
    smi.amdsmi_get_violation_status = lambda h: supported("violation", violation or {})
    return smi


def open_with(monkeypatch, smi, bus: str | None = "00000000:c1:00.0", device: str = "cuda:0"):
    monkeypatch.setitem(sys.modules, "amdsmi", smi)
    return open_telemetry(device, pci_bus_id=bus, vendor="AMD")


def test_readings_of_the_gpu_at_the_given_address_with_plain_throttle_names(monkeypatch):
    smi = fake_amdsmi(unsupported=("clock_mem",))
    source, how = open_with(monkeypatch, smi)
    assert source is not None and source.name == "amdsmi" and "amdsmi" in how
    assert smi.state["bdf"] == "0000:c1:00.0"  # torch's eight-digit domain, as amdsmi parses an address
    reading = source.read().as_dict()
    assert reading["temperature_c"] == 91  # the hotspot, where the firmware throttles, not the cooler edge
    assert reading["power_w"] == 540 and reading["power_limit_w"] == pytest.approx(560.0)
    assert reading["clock_mhz"] == 1700 and "memory_clock_mhz" not in reading
    assert reading["ecc_corrected"] == 2 and reading["ecc_uncorrected"] == 1
    assert reading["throttle"] == ["power cap", "thermal slowdown"]
    source.close()
    assert smi.state["shutdown"] == 1


def test_older_releases_name_the_clock_cur_clk_and_newer_gpus_report_violations(monkeypatch):
    violation = {"active_ppt_pwr": False, "active_socket_thrm": True, "active_vr_thrm": "N/A",
                 "active_hbm_thrm": False, "active_prochot_thrm": False}
    smi = fake_amdsmi(clock_key="cur_clk", metrics={"indep_throttle_status": "N/A"}, violation=violation)
    reading = open_with(monkeypatch, smi)[0].read()
    assert reading.clock_mhz == 1700
    assert reading.throttle == ["thermal slowdown"]


def test_readings_marked_not_available_are_absent(monkeypatch):
    smi = fake_amdsmi(power={"current_socket_power": "N/A", "average_socket_power": 0xFFFF},
                      metrics={"indep_throttle_status": 0xFFFFFFFFFFFFFFFF},
                      unsupported=("temp_hotspot", "ecc", "violation", "power_cap"))
    reading = open_with(monkeypatch, smi)[0].read().as_dict()
    assert reading["temperature_c"] == 70  # the edge sensor when the hotspot is not offered
    for absent in ("power_w", "power_limit_w", "ecc_uncorrected", "throttle"):
        assert absent not in reading


def test_without_a_bus_id_the_index_is_taken_in_amdsmi_order(monkeypatch):
    source = open_with(monkeypatch, fake_amdsmi(), bus=None, device="cuda:1")[0]
    assert source.read().temperature_c == 77


def test_missing_amdsmi_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    source, reason = open_telemetry("cuda:0", vendor="AMD")
    assert source is None and reason.startswith("amdsmi is not available") and "install" in reason
