"""The process that burns one device for `acceldoctor stress`, and the CPU's split into workers.

It talks to the parent through its own pipe: `ready` (torch is loaded; the watchdog's clock starts), `agreement`
(the cross-device product), one `sample` per interval, then `done`, or `error` with the workload that raised.
Which workload is running is also kept in a shared integer, so that when the device hangs or the process dies
the parent can say in which one.
"""

from __future__ import annotations

import os
import signal

CPU_TYPE = "cpu"
# Values of the shared "which workload is running" integer besides a workload's index.
STARTING = -2
AGREEMENT_RUNNING = -1


def cpu_worker_cores(worker: int, workers: int, cores: list[int]) -> list[int]:
    """The cores CPU worker `worker` of `workers` burns on: an equal, disjoint share of the cores this process may
    use, or one shared core each when there are more workers than cores."""
    if workers > len(cores):
        return [cores[worker % len(cores)]]
    per = len(cores) // workers
    return cores[worker * per:(worker + 1) * per]


def pin_cpu_worker(cores: list[int] | None) -> None:
    """Confine a `cpu:N` worker to its share of the cores (a plain `cpu` keeps all of them)."""
    if not cores or not hasattr(os, "sched_setaffinity"):
        return
    os.sched_setaffinity(0, cores)
    import torch

    torch.set_num_threads(len(cores))


def torch_device(device: str):
    import torch

    # `cpu:N` is a worker of the one CPU device: torch computes on `cpu`.
    return torch.device(CPU_TYPE) if device.startswith(f"{CPU_TYPE}:") else torch.device(device)


def pci_bus_id(device) -> str | None:
    """The PCI address NVML and amdsmi know the device by, read here so the parent need not touch the device."""
    if device.type != "cuda":
        return None
    import torch

    try:
        props = torch.cuda.get_device_properties(device)
        return f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
    except (AttributeError, RuntimeError):
        return None


def _deterministic_kernels() -> None:
    """The burn's premise is that one product repeats bit for bit: ask every stack for deterministic kernels."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS, read when CUDA initialises
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)
    from acceldoctor.checks.dtypes import float32_math

    float32_math(reduced=False).__enter__()  # no TF32/HF32: a float32 burn computes in float32, for the whole run


def _parent_gone(parent: int) -> bool:
    return os.getppid() != parent  # re-parented: the stress command was killed; stop burning


def device_main(device: str, duration_s: float, interval_s: float, fault: str | None, kinds: tuple[str, ...],
                cores: list[int] | None, messages, running) -> None:
    """`messages` is this device's own pipe to the parent (no lock shared with other devices: a device killed
    mid-message cannot stall the others)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    parent = os.getppid()
    try:
        _deterministic_kernels()
        pin_cpu_worker(cores)
        from acceldoctor.devices.backends import load_backends, set_current_device
        from acceldoctor.faults import injected
        from acceldoctor.stress.agreement import agreement_product, raw_bytes
        from acceldoctor.stress.workloads import build_workloads, run_workloads

        load_backends()
        target = torch_device(device)
        set_current_device(target)
        messages.send((device, "ready", {"pci_bus_id": pci_bus_id(target)}))
        with injected(fault):
            running.value = AGREEMENT_RUNNING
            product = agreement_product(target)
            messages.send((device, "agreement", (raw_bytes(product), list(product.shape))))
            running.value = STARTING
            workloads = build_workloads(target, kinds)
            messages.send((device, "workloads", [(w.name, w.check, w.describe()) for w in workloads]))

            def on_interval(sample: dict) -> None:
                if _parent_gone(parent):
                    os._exit(0)
                messages.send((device, "sample", sample))

            run_workloads(target, workloads, duration_s, interval_s=interval_s, on_interval=on_interval,
                          on_workload=lambda index: setattr(running, "value", index),
                          on_prepared=lambda: messages.send((device, "prepared", None)))
    except Exception as exc:  # reported for this device; the others go on
        from acceldoctor.messages import describe_exception

        messages.send((device, "error", (running.value, describe_exception(exc))))
        return
    messages.send((device, "done", None))
