import json

import pytest

from acceldoctor.devices.discovery import UnknownDeviceError, list_devices, resolve_devices
from acceldoctor.report.model import DeviceInfo


def test_cpu_is_always_listed_last_with_memory_and_identity():
    devices = list_devices()
    cpu = devices[-1]
    assert cpu.id == "cpu" and cpu.name and cpu.vendor
    assert cpu.memory_bytes and cpu.memory_bytes > 2**28


def test_resolve_accepts_ids_bare_types_lists_and_all():
    devices = [DeviceInfo(id="cuda:0", name="g0", vendor="NVIDIA"), DeviceInfo(id="cuda:1", name="g1", vendor="NVIDIA"),
               DeviceInfo(id="cpu", name="c", vendor="AMD")]
    assert [d.id for d in resolve_devices(None, devices)] == ["cuda:0"]
    assert [d.id for d in resolve_devices("cuda", devices)] == ["cuda:0"]
    assert [d.id for d in resolve_devices("cuda:1,cpu", devices)] == ["cuda:1", "cpu"]
    assert [d.id for d in resolve_devices("all", devices)] == ["cuda:0", "cuda:1", "cpu"]
    with pytest.raises(UnknownDeviceError, match="this machine has: cuda:0, cuda:1, cpu"):
        resolve_devices("npu:0", devices)


def test_devices_json_lists_the_cpu_and_the_software_stack(cli):
    proc = cli("devices", "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["host"]["torch"] and payload["host"]["python"]
    assert payload["devices"][-1]["id"] == "cpu"


class _Props:
    name = "Instinct MI300X"
    total_memory = 192 * 2**30


def test_rocm_devices_are_reported_as_amd_through_the_cuda_api(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: _Props())
    monkeypatch.setattr(torch.version, "hip", "6.2.41133", raising=False)
    devices = list_devices()
    assert [d.id for d in devices] == ["cuda:0", "cuda:1", "cpu"]
    assert devices[0].vendor == "AMD" and devices[0].runtime_version == "HIP 6.2.41133"
    assert devices[0].memory_bytes == 192 * 2**30


def test_absent_vendor_packages_are_not_imported():
    import sys

    list_devices()
    assert "torch_npu" not in sys.modules
