"""Start N local ranks in a torch.distributed group, run one function on each, and bring back what each returned,
naming the ranks that died or hung, within a bounded time.

This is the local half of `acceldoctor check --nproc N` (one process per device, or N CPU ranks); a multi-node run
gets the same group from torchrun's environment instead. The process-group timeout bounds every collective, so a
survivor waiting on a dead peer fails within it; the parent's deadline bounds the whole run, and a rank still
running after it is killed and reported as hung.
"""

from __future__ import annotations

import datetime
import os
import queue
import signal
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acceldoctor.interconnect.group import Endpoint, GroupView, device_for_rank, join

# The collective backend for each device type; `backend=` overrides it.
BACKENDS = {"cuda": "nccl", "npu": "hccl", "xpu": "xccl", "cpu": "gloo"}


def backend_for(device_type: str) -> str:
    return BACKENDS.get(device_type, "gloo")


@dataclass(frozen=True)
class RankContext:
    rank: int
    world_size: int
    device: str  # e.g. "cpu" or "cuda:3": one device per rank
    group: GroupView | None = None
    emit: Callable[[Any], None] | None = None  # hands a message to the parent's `on_message` at once

    def send(self, message: Any) -> None:
        if self.emit is not None:
            self.emit(message)


@dataclass
class RankFailure:
    rank: int
    kind: str  # "died", "hung" or "error"
    message: str


@dataclass
class LaunchResult:
    results: dict[int, Any] = field(default_factory=dict)  # rank -> what the function returned
    failures: list[RankFailure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None or exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def _rank_entry(rank: int, world_size: int, port: int, backend: str, device_type: str, group_timeout_s: float,
                fn: Callable[[RankContext], Any], args: tuple, results) -> None:
    import torch
    import torch.distributed as dist

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))  # ranks share the host's cores
    device = device_for_rank(device_type, rank)
    try:
        endpoint = Endpoint(rank, world_size, rank, "127.0.0.1", port, host_store=False)
        view = join(endpoint, backend=backend, device=device, timeout_s=group_timeout_s)
        try:
            value = fn(RankContext(rank, world_size, device, view, lambda m: results.put((rank, "message", m))),
                       *args)
        finally:
            dist.destroy_process_group()
    except Exception as exc:  # reported by the parent, with the rank, instead of lost in a child's stderr
        last = traceback.format_exception_only(type(exc), exc)[-1].strip().splitlines()[0]
        results.put((rank, "error", last))
        return
    results.put((rank, "ok", value))


def launch_local(nproc: int, fn: Callable[..., Any], args: tuple = (), *, device_type: str = "cpu",
                 backend: str | None = None, group_timeout_s: float = 60.0, deadline_s: float = 300.0,
                 on_message: Callable[[int, Any], None] | None = None,
                 abandoned: Callable[[], set[int]] | None = None) -> LaunchResult:
    """Run `fn(RankContext, *args)` on `nproc` spawned ranks; `fn` must be importable (a module-level function).

    What a rank passes to `RankContext.send` reaches `on_message(rank, message)` in this process as it is sent.
    `abandoned()` may name ranks the others found hung: once every other rank has reported, those are stopped
    at once (reported as hung) rather than at the deadline.
    """
    import torch.distributed as dist
    import torch.multiprocessing as mp

    begin = time.monotonic()
    context = mp.get_context("spawn")
    results = context.Queue()
    # The store lives here, not in rank 0, so that it outlives any rank: the survivors read from it who stopped.
    store = dist.TCPStore("127.0.0.1", 0, None, True, timeout=datetime.timedelta(seconds=group_timeout_s),
                          wait_for_workers=False)
    port = store.port
    chosen = backend or backend_for(device_type)
    ranks = [context.Process(target=_rank_entry, daemon=True,
                             args=(r, nproc, port, chosen, device_type, group_timeout_s, fn, args, results))
             for r in range(nproc)]
    for process in ranks:
        process.start()
    outcome = LaunchResult()
    reported: set[int] = set()
    deadline = begin + deadline_s
    try:
        while len(reported) < nproc and time.monotonic() < deadline:
            if abandoned is not None and reported | abandoned() >= set(range(nproc)):
                break
            try:
                rank, status, value = results.get(timeout=0.5)
            except queue.Empty:
                if all(not p.is_alive() for p in ranks):
                    break  # nobody left to report
                continue
            if status == "message":
                if on_message is not None:
                    on_message(rank, value)
                continue
            reported.add(rank)
            if status == "ok":
                outcome.results[rank] = value
            else:
                outcome.failures.append(RankFailure(rank, "error", value))
    except BaseException:  # Ctrl-C, or a failing on_message: no rank outlives this call
        for process in ranks:
            if process.is_alive():
                process.kill()
            process.join(5)
        raise
    given_up = (abandoned() if abandoned is not None else set()) - reported
    for rank, process in enumerate(ranks):
        if rank in given_up and process.is_alive():
            process.kill()
            process.join(5)
            outcome.failures.append(RankFailure(rank, "hung", f"rank {rank} stopped answering its peers and was "
                                                              f"stopped"))
            continue
        process.join(max(0.0, min(10.0, deadline - time.monotonic())))
        if rank in reported:
            if process.is_alive():
                process.kill()
                process.join(5)
            continue
        if process.is_alive():
            process.kill()
            process.join(5)
            outcome.failures.append(RankFailure(rank, "hung", f"rank {rank} gave no result within {deadline_s:g} s "
                                                              f"and was stopped"))
        else:
            outcome.failures.append(RankFailure(rank, "died", f"rank {rank} died ({_signal_name(process.exitcode)}) "
                                                              f"before reporting"))
    outcome.failures.sort(key=lambda f: (f.kind != "died", f.kind != "hung", f.rank))  # first causes first
    outcome.seconds = time.monotonic() - begin
    del store  # closes the server only now: every rank is gone
    return outcome
