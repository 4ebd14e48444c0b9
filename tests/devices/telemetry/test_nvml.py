"""NVIDIA telemetry through a fake `pynvml` module: what a user sees in the report's timeline."""

from __future__ import annotations

import sys
import types

import pytest

from acceldoctor.devices.telemetry import open_telemetry

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_GPU_IS_LOST = 15


class NVMLError(Exception):
    def __init__(self, value: int):
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeGpu:
    def __init__(self, temperature: int, reasons: int = 0):
        self.temperature = temperature
        self.power_mw = 312_500
        self.limit_mw = 400_000
        self.sm_mhz, self.mem_mhz = 1755, 2619
        self.reasons = reasons
        self.ecc = {0: 4, 1: 0}  # corrected, uncorrected (volatile)
        self.lost = False


def fake_pynvml(gpus_by_bus: dict[str, FakeGpu], *, by_index: list[FakeGpu] | None = None,
                events: bool = True, new_reasons_api: bool = True, unsupported: tuple[str, ...] = ()):
    """A module with the few NVML calls the reader makes; `unsupported` calls raise NOT_SUPPORTED."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.NVML_TEMPERATURE_GPU, nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM = 0, 1, 2
    nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC = 0, 1, 0
    nvml.nvmlEventTypeXidCriticalError = 0x8
    nvml.state = {"init": 0, "shutdown": 0, "xids": [], "asked_bus": []}

    def call(name, gpu, value):
        if name in unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return value

    nvml.nvmlInit = lambda: nvml.state.__setitem__("init", nvml.state["init"] + 1)
    nvml.nvmlShutdown = lambda: nvml.state.__setitem__("shutdown", nvml.state["shutdown"] + 1)

    def by_bus(bus):
        nvml.state["asked_bus"].append(bus)
        if bus not in gpus_by_bus:
            raise NVMLError(13)  # NVML_ERROR_NOT_FOUND
        return gpus_by_bus[bus]

    nvml.nvmlDeviceGetHandleByPciBusId = by_bus
    nvml.nvmlDeviceGetHandleByIndex = lambda i: (by_index or [])[i]
    nvml.nvmlDeviceGetTemperature = lambda h, kind: call("temperature", h, h.temperature)
    nvml.nvmlDeviceGetPowerUsage = lambda h: call("power", h, h.power_mw)
    nvml.nvmlDeviceGetEnforcedPowerLimit = lambda h: call("limit", h, h.limit_mw)
    nvml.nvmlDeviceGetClockInfo = lambda h, kind: call(f"clock{kind}", h, h.sm_mhz if kind == 1 else h.mem_mhz)
    nvml.nvmlDeviceGetTotalEccErrors = lambda h, kind, counter: call("ecc", h, h.ecc[kind])
    reasons = lambda h: call("reasons", h, h.reasons)  # noqa: E731
    if new_reasons_api:
        nvml.nvmlDeviceGetCurrentClocksEventReasons = reasons
    nvml.nvmlDeviceGetCurrentClocksThrottleReasons = reasons
    nvml.nvmlEventSetCreate = lambda: "event-set"
    nvml.nvmlEventSetFree = lambda s: None

    def register(handle, kind, event_set):
        if not events:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)

    def wait(event_set, timeout_ms):
        assert timeout_ms == 0, "the reader must never block on events"
        if not nvml.state["xids"]:
            raise NVMLError(NVML_ERROR_TIMEOUT)
        return types.SimpleNamespace(eventData=nvml.state["xids"].pop(0), eventType=0x8)

    nvml.nvmlDeviceRegisterEvents = register
    nvml.nvmlEventSetWait = wait
    return nvml


BUS = "00000000:65:00.0"


def open_with(monkeypatch, nvml, device="cuda:0", bus: str | None = BUS):
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # an AMD library on the test host must not answer instead
    return open_telemetry(device, pci_bus_id=bus)


def test_readings_of_the_gpu_at_the_given_bus_in_watts_and_plain_reasons(monkeypatch):
    other, burning = FakeGpu(35), FakeGpu(83, reasons=0x1 | 0x4 | 0x40)
    nvml = fake_pynvml({BUS: burning, "00000000:17:00.0": other}, unsupported=("clock2",))
    source, how = open_with(monkeypatch, nvml)
    assert source is not None and source.name == "NVML" and "NVML" in how
    reading = source.read().as_dict()
    assert reading["temperature_c"] == 83  # the GPU at the bus id, not NVML's index 0
    assert reading["power_w"] == pytest.approx(312.5) and reading["power_limit_w"] == pytest.approx(400.0)
    assert reading["clock_mhz"] == 1755
    assert "memory_clock_mhz" not in reading  # a reading the GPU does not offer is absent, not an error
    # GPU idle (0x1) is no limit on a burn; the power cap and the thermal slowdown are named in words
    assert reading["throttle"] == ["software power cap", "hardware thermal slowdown"]
    assert reading["ecc_corrected"] == 4 and reading["ecc_uncorrected"] == 0
    assert reading["xid"] == []  # watched, none came
    source.close()
    source.close()
    assert nvml.state["shutdown"] == 1


def test_xid_events_are_reported_once_in_the_read_after_they_happen(monkeypatch):
    nvml = fake_pynvml({BUS: FakeGpu(60)})
    source, _ = open_with(monkeypatch, nvml)
    nvml.state["xids"] += [79, 48]
    assert source.read().xid == [79, 48]
    assert source.read().xid == []


def test_without_event_support_there_is_no_xid_but_every_other_reading(monkeypatch):
    nvml = fake_pynvml({BUS: FakeGpu(60)}, events=False)
    source, _ = open_with(monkeypatch, nvml)
    reading = source.read().as_dict()
    assert "xid" not in reading and reading["temperature_c"] == 60


def test_an_older_driver_reports_throttle_reasons_under_the_old_name(monkeypatch):
    nvml = fake_pynvml({BUS: FakeGpu(60, reasons=0x2 | 0x80)}, new_reasons_api=False)
    source, _ = open_with(monkeypatch, nvml)
    assert source.read().throttle == ["applications clocks setting", "hardware power brake"]


def test_a_gpu_that_fell_off_the_bus_reads_unhealthy_instead_of_raising(monkeypatch):
    gpu = FakeGpu(60)
    source, _ = open_with(monkeypatch, fake_pynvml({BUS: gpu}))
    gpu.lost = True
    reading = source.read().as_dict()
    assert "lost" in reading["health"] and "temperature_c" not in reading


def test_without_a_bus_id_the_cuda_index_goes_through_cuda_visible_devices(monkeypatch):
    gpus = [FakeGpu(30), FakeGpu(31), FakeGpu(32), FakeGpu(33)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    source, _ = open_with(monkeypatch, fake_pynvml({}, by_index=gpus), device="cuda:1", bus=None)
    assert source.read().temperature_c == 33


def test_missing_pynvml_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if nvidia-ml-py were not installed
    source, reason = open_telemetry("cuda:0", pci_bus_id=BUS, vendor="NVIDIA")
    assert source is None and "pip install nvidia-ml-py" in reason


def test_nvml_that_cannot_start_says_so(monkeypatch):
    nvml = fake_pynvml({})

    def no_driver():
        raise NVMLError(9)  # NVML_ERROR_DRIVER_NOT_LOADED

    nvml.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    source, reason = open_telemetry("cuda:0", vendor="nvidia")
    assert source is None and reason.startswith("NVML could not start") and "driver" in reason


def test_an_unknown_bus_id_is_a_plain_reason_and_releases_nvml(monkeypatch):
    nvml = fake_pynvml({BUS: FakeGpu(60)})
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    source, reason = open_telemetry("cuda:0", pci_bus_id="00000000:99:00.0", vendor="NVIDIA")
    assert source is None and "00000000:99:00.0" in reason
    assert nvml.state["shutdown"] == nvml.state["init"] == 1
