"""Software stack versions: host, torch, CUDA/HIP, CANN/torch_npu, drivers (where readable)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import socket
import sys

from acceldoctor.report.model import HostInfo


def cuda_driver_version(index: int) -> str | None:
    """NVIDIA driver via nvidia-ml-py when it is installed; None otherwise."""
    if importlib.util.find_spec("pynvml") is None:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else str(version)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no permission: the inventory goes on without it
        return None


def npu_versions() -> tuple[str | None, str | None]:
    """(runtime, driver) for Ascend: torch_npu's CANN version; the driver from its version file."""
    runtime = None
    try:
        import torch_npu

        cann = getattr(getattr(torch_npu, "version", None), "cann", None)
        runtime = f"CANN {cann}" if cann else f"torch_npu {torch_npu.__version__}"
    except Exception:
        pass
    driver = None
    try:
        with open("/usr/local/Ascend/driver/version.info", encoding="utf-8") as f:
            for line in f:
                if line.startswith("Version="):
                    driver = line.split("=", 1)[1].strip()
    except OSError:
        pass
    return runtime, driver


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def host_info() -> HostInfo:
    import torch

    stack: dict[str, str] = {}
    if torch.version.cuda:
        stack["cuda"] = torch.version.cuda
    if getattr(torch.version, "hip", None):
        stack["hip"] = torch.version.hip
    if torch.backends.cudnn.is_available():
        stack["cudnn"] = str(torch.backends.cudnn.version())
    for module, dist in (("torch_npu", "torch_npu"), ("intel_extension_for_pytorch", "intel_extension_for_pytorch"),
                         ("pynvml", "nvidia-ml-py")):
        if importlib.util.find_spec(module) and (v := _dist_version(dist)):
            stack[dist] = v
    return HostInfo(
        hostname=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        torch=torch.__version__,
        stack=stack,
    )
