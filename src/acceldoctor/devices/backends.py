"""Load vendor torch backends that are installed, and talk to any device type the same way."""

from __future__ import annotations

import importlib
import importlib.util

from acceldoctor.messages import describe_exception

# Vendor packages that register a device type with torch when imported (older releases are not auto-loaded).
VENDOR_BACKENDS = {"npu": "torch_npu", "xpu": "intel_extension_for_pytorch"}

_load_errors: dict[str, str] = {}


def load_backends() -> dict[str, str]:
    """Import each installed vendor backend once; returns {package: error} for those that failed to import.

    A vendor package that does not match the installed torch (a common sight) must not take the whole
    tool down: its devices are then simply absent, and the error is kept for the inventory to show.
    """
    import torch

    for device_type, package in VENDOR_BACKENDS.items():
        if package in _load_errors or importlib.util.find_spec(package) is None:
            continue
        if device_type == "xpu" and getattr(torch, "xpu", None) is not None and torch.xpu.is_available():
            continue  # torch >= 2.4 drives Intel GPUs natively
        try:
            importlib.import_module(package)
            _load_errors[package] = ""
        except Exception as exc:  # ImportError, OSError from missing .so files, version asserts
            _load_errors[package] = describe_exception(exc)
    return {k: v for k, v in _load_errors.items() if v}


def synchronize(device) -> None:
    """Wait for queued work on `device` (a torch.device) to finish."""
    import torch

    if device.type == "cpu":
        return
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "synchronize"):
        accelerator.synchronize(device)
        return
    backend = getattr(torch, device.type)
    if device.type == "mps":  # torch.mps.synchronize() takes no device
        backend.synchronize()
    else:
        backend.synchronize(device)


def set_current_device(device) -> None:
    """Make `device` the current one of its type (NCCL-like backends and all_gather_object rely on it)."""
    import torch

    if device.type in ("cpu", "mps") or device.index is None:
        return
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "set_device_index"):
        accelerator.set_device_index(device.index)
    else:
        getattr(torch, device.type).set_device(device.index)


def device_responds(device) -> bool:
    """Whether the device still runs a trivial op; False after a sticky fault (illegal address, reset)."""
    import torch

    try:
        probe = torch.ones(8, device=device)
        probe.add_(1)
        synchronize(device)
        return bool((probe.cpu() == 2).all())
    except Exception:
        return False
