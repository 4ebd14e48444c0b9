"""Which reader serves a torch device string: NVML or amdsmi for `cuda`, npu-smi for `npu`, none for the rest.

Called by the process that watches the burning devices, which must not initialise CUDA or any torch backend (the
device processes own the devices): nothing here imports torch. The device process passes its PCI bus id, the one
exact way to name the same GPU from outside its process.
"""

from __future__ import annotations

from acceldoctor.devices.telemetry.base import TelemetrySource

CPU_REASON = "the CPU exposes no device telemetry (temperature, power, clocks) to read"


def _parse(device: str) -> tuple[str, int]:
    kind, _, index = device.partition(":")
    return kind.strip().lower(), int(index) if index.strip().isdigit() else 0


def _open_cuda(index: int, pci_bus_id: str | None, vendor: str | None) -> tuple[TelemetrySource | None, str]:
    from acceldoctor.devices.telemetry.amdsmi import open_amdsmi
    from acceldoctor.devices.telemetry.nvml import open_nvml

    hint = (vendor or "").strip().lower()
    if hint == "nvidia":
        return open_nvml(index, pci_bus_id)
    if hint == "amd":
        return open_amdsmi(index, pci_bus_id)
    # `cuda` is both NVIDIA's CUDA and AMD's ROCm (HIP): NVML first, as NVIDIA is the likelier, then amdsmi.
    source, nvml_reason = open_nvml(index, pci_bus_id)
    if source is not None:
        return source, nvml_reason
    source, amd_reason = open_amdsmi(index, pci_bus_id)
    if source is not None:
        return source, amd_reason
    return None, f"no GPU telemetry could be read: {nvml_reason}; and {amd_reason}"


def open_telemetry(device: str, pci_bus_id: str | None = None,
                   vendor: str | None = None) -> tuple[TelemetrySource | None, str]:
    """The telemetry reader for torch device `device` (`cuda:0`, `npu:1`, `xpu:0`, `cpu`), or None and a plain
    one-sentence reason. `pci_bus_id` ("%08x:%02x:%02x.0" from torch's device properties) finds a GPU exactly;
    `vendor` ("NVIDIA", "AMD", as DeviceInfo.vendor has it) skips guessing which library a `cuda` device answers to.
    The caller closes the reader."""
    kind, index = _parse(device)
    if kind == "cpu":
        return None, CPU_REASON
    if kind == "cuda":
        return _open_cuda(index, pci_bus_id, vendor)
    if kind == "npu":
        from acceldoctor.devices.telemetry.npu_smi import open_npu_smi

        return open_npu_smi(index)
    if kind == "xpu":
        return None, "reading Intel GPU telemetry (xpu-smi) is not supported yet"
    if kind == "mps":
        return None, "macOS exposes no Apple GPU telemetry (temperature, power, clocks) to a user process"
    return None, f"there is no telemetry reader for {kind or 'this'} devices"
