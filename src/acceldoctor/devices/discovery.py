"""Enumerate devices through torch's device-agnostic APIs, never importing absent vendor packages."""

from __future__ import annotations

import os
import platform

from acceldoctor.devices.backends import load_backends
from acceldoctor.devices.versions import cuda_driver_version, npu_versions
from acceldoctor.report.model import DeviceInfo

ACCELERATOR_TYPES = ("cuda", "npu", "xpu", "mps")


class UnknownDeviceError(ValueError):
    pass


CPU_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon", "0x41": "Arm",
               "0x48": "HiSilicon", "0x61": "Apple"}


def _cpu_identity() -> tuple[str, str]:
    """(model name, vendor) from /proc/cpuinfo, falling back to the platform module."""
    name = vendor = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key in ("model name", "Model name") and not name:
                    name = value
                elif key in ("vendor_id", "CPU implementer") and not vendor:
                    vendor = CPU_VENDORS.get(value, value)
    except OSError:
        pass
    return name or platform.processor() or platform.machine() or "CPU", vendor or platform.machine() or "unknown"


def _host_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_device() -> DeviceInfo:
    import torch

    name, vendor = _cpu_identity()
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)()
    return DeviceInfo(id="cpu", name=name, vendor=vendor, memory_bytes=_host_memory_bytes(),
                      runtime_version=f"ATen CPU {capability}" if capability else None,
                      cores=os.cpu_count(), threads=torch.get_num_threads())


def _backend(device_type: str):
    """The torch backend module for a device type, or None when it is absent or has no devices."""
    import torch

    load_backends()
    module = getattr(torch, device_type, None)
    if module is None:
        return None
    try:
        return module if module.is_available() else None
    except Exception:  # a broken vendor runtime must not stop the inventory
        return None


def _accelerator_devices(device_type: str) -> list[DeviceInfo]:
    import torch

    backend = _backend(device_type)
    if backend is None:
        return []
    if device_type == "mps":
        return [DeviceInfo(id="mps", name="Apple GPU (MPS)", vendor="Apple",
                           memory_bytes=_host_memory_bytes())]
    devices = []
    try:
        count = backend.device_count()
    except Exception:  # a driver that fails to enumerate: no devices of this type
        return []
    for index in range(count):
        try:
            props = backend.get_device_properties(index)
        except Exception as exc:
            devices.append(DeviceInfo(id=f"{device_type}:{index}", name=f"unreadable ({type(exc).__name__})",
                                      vendor="unknown"))
            continue
        if device_type == "cuda":
            hip = getattr(torch.version, "hip", None)
            vendor = "AMD" if hip else "NVIDIA"
            runtime = f"HIP {hip}" if hip else f"CUDA {torch.version.cuda}"
            driver = None if hip else cuda_driver_version(index)
        elif device_type == "npu":
            vendor, (runtime, driver) = "Huawei", npu_versions()
        else:
            vendor, runtime, driver = "Intel", getattr(props, "driver_version", None), None
        devices.append(DeviceInfo(
            id=f"{device_type}:{index}",
            name=getattr(props, "name", device_type),
            vendor=vendor,
            memory_bytes=getattr(props, "total_memory", None),
            driver_version=driver,
            runtime_version=runtime,
        ))
    return devices


def list_devices() -> list[DeviceInfo]:
    """Every visible device, accelerators first, the CPU last."""
    devices: list[DeviceInfo] = []
    for device_type in ACCELERATOR_TYPES:
        devices += _accelerator_devices(device_type)
    return devices + [_cpu_device()]


def default_device(devices: list[DeviceInfo]) -> DeviceInfo:
    """The first accelerator, or the CPU when there is none."""
    return devices[0]


def resolve_devices(spec: str | None, devices: list[DeviceInfo]) -> list[DeviceInfo]:
    """Turn `--device` (an id, a comma list, a bare type like `cuda`, or `all`) into devices."""
    if not spec:
        return [default_device(devices)]
    if spec == "all":
        return devices
    by_id = {d.id: d for d in devices}
    chosen: list[DeviceInfo] = []
    for part in (p.strip() for p in spec.split(",")):
        key = part if part in by_id else (f"{part}:0" if f"{part}:0" in by_id else part)
        if key not in by_id:
            known = ", ".join(by_id)
            raise UnknownDeviceError(f"unknown device {part!r}; this machine has: {known}")
        chosen.append(by_id[key])
    return chosen
