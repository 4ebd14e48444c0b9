"""Join a torch.distributed group, know who is in it, and tell which rank stopped when a collective breaks.

The same code serves `acceldoctor check --nproc N` (the parent hosts the key-value store and starts the
ranks) and `torchrun ... -m acceldoctor check` (torchrun's agent hosts it; its environment names it).
Besides the process group, every rank keeps entries in the store:
- `at/<rank>`: where it is: `in <task> <check>`, `done <task>`, or `failed <task> #<order>: <reason>`, where
  <order> (from a shared counter) says which rank failed first;
- `beat/<rank>`: a counter a background thread increments every second (a counter, not a clock, so hosts
  with skewed clocks still agree on whether it moves).
When a collective fails on a survivor, these entries say which rank is behind and whether its process
still beats (hung) or not (died), so the survivors can name it without any collective (the group is broken
by then). A rank that raised its own error is named by its reason, as the first to fail.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import torch.distributed as dist

HEARTBEAT_S = 1.0
# A rank whose heartbeat is older than this is taken to have died (the thread beats every HEARTBEAT_S).
DEAD_AFTER_S = 5.0


@dataclass(frozen=True)
class RankInfo:
    rank: int
    host: str
    device: str

    def describe(self) -> str:
        return f"rank {self.rank} (host {self.host}, device {self.device})"


@dataclass
class GroupView:
    """This rank's view of its group: who it is and who the others are (host and device of every rank)."""

    rank: int
    world_size: int
    backend: str
    members: list[RankInfo] = field(default_factory=list)
    store: dist.Store | None = None

    @property
    def me(self) -> RankInfo:
        return self.members[self.rank]

    def describe(self, rank: int) -> str:
        if 0 <= rank < len(self.members):
            return self.members[rank].describe()
        return f"rank {rank}"

    @property
    def single_host(self) -> bool:
        return len({m.host for m in self.members}) <= 1


@dataclass(frozen=True)
class Endpoint:
    """Where the group's store is and how to join it (from --nproc's parent or from torchrun's environment)."""

    rank: int
    world_size: int
    local_rank: int
    address: str
    port: int
    host_store: bool  # this rank hosts the store (plain env launch without torchrun's agent)


def launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    """Whether this process is one of torchrun's ranks. RANK and WORLD_SIZE alone are not enough: schedulers
    (Kubeflow's PyTorchJob) set them per pod for the torchrun they expect the pod to start."""
    env = os.environ if environ is None else environ
    return "RANK" in env and "WORLD_SIZE" in env and ("TORCHELASTIC_RUN_ID" in env or "LOCAL_RANK" in env)


def endpoint_from_env(environ: dict[str, str] | None = None) -> Endpoint | None:
    """The torchrun-style environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), or None when not launched so."""
    env = os.environ if environ is None else environ
    if not launched_by_torchrun(env):
        return None
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local_rank = int(env.get("LOCAL_RANK", rank))
        port = int(env.get("MASTER_PORT", "29500"))
    except ValueError as exc:
        raise ValueError(f"the launcher's environment is malformed: {exc}") from None
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    # torchrun's agent hosts the store itself and says so; otherwise rank 0 must host it.
    agent = env.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    address = env.get("MASTER_ADDR", "127.0.0.1")
    return Endpoint(rank, world, local_rank, address, port, host_store=not agent and rank == 0)


def device_type(device_id: str) -> str:
    """"cuda" of "cuda:3"."""
    return device_id.split(":", 1)[0]


def device_for_rank(device_type: str, local_rank: int) -> str:
    """One device per local rank; modulo the devices this process sees (a scheduler may show each rank only its own)."""
    if device_type == "cpu":
        return "cpu"
    import torch

    try:
        count = getattr(torch, device_type).device_count()
    except (AttributeError, RuntimeError):
        count = 0
    return f"{device_type}:{local_rank % count if count else local_rank}"


def join(endpoint: Endpoint, *, backend: str, device: str, timeout_s: float) -> GroupView:
    """Initialize the process group through our own store client and exchange every rank's host and device."""
    import torch

    from acceldoctor.devices.backends import load_backends, set_current_device

    load_backends()  # torch_npu registers hccl when imported
    set_current_device(torch.device(device))
    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(endpoint.address, endpoint.port, endpoint.world_size if endpoint.host_store else None,
                          endpoint.host_store, timeout=timeout, wait_for_workers=False)
    dist.init_process_group(backend, store=dist.PrefixStore("pg", store), rank=endpoint.rank,
                            world_size=endpoint.world_size, timeout=timeout)
    me = RankInfo(endpoint.rank, socket.gethostname(), device)
    members: list[RankInfo | None] = [None] * endpoint.world_size
    dist.all_gather_object(members, me)
    view = GroupView(endpoint.rank, endpoint.world_size, str(dist.get_backend()), list(members),
                     dist.PrefixStore("acceldoctor", store))
    _start_heartbeat(endpoint, timeout)
    return view


def _start_heartbeat(endpoint: Endpoint, timeout: datetime.timedelta) -> None:
    # A client of its own: the main thread's store connection may be blocked in a wait.
    client = dist.PrefixStore("acceldoctor", dist.TCPStore(endpoint.address, endpoint.port, None, False,
                                                           timeout=timeout))

    def beat() -> None:
        while True:
            try:
                client.add(f"beat/{endpoint.rank}", 1)
            except Exception:  # the store went away: the run is over
                return
            time.sleep(HEARTBEAT_S)

    threading.Thread(target=beat, name="acceldoctor-heartbeat", daemon=True).start()


def mark_in(view: GroupView, task: int, check_id: str) -> None:
    _set(view, f"in {task} {check_id}")


def mark_done(view: GroupView, task: int) -> None:
    _set(view, f"done {task}")


def mark_failed(view: GroupView, task: int, reason: str) -> int:
    """Record that this rank gave up on `task`; returns its place among the ranks that did (1: the first)."""
    order = view.store.add(f"failures/{task}", 1) if view.store is not None else 1
    _set(view, f"failed {task} #{order}: {reason[:300]}")
    return order


def _set(view: GroupView, value: str) -> None:
    if view.store is not None:
        with contextlib.suppress(Exception):  # the store is gone with its host: nothing left to tell
            view.store.set(f"at/{view.rank}", value)


def _read(store: dist.Store, key: str) -> str | None:
    try:
        if not store.check([key]):
            return None
        return store.get(key).decode()
    except Exception:
        return None


@dataclass(frozen=True)
class Stopped:
    rank: int
    kind: str  # "died", "hung" or "failed" (it raised an error of its own first)
    where: str  # the check it was in, or its error


def _settled(marker: str | None, task: int) -> bool:
    """Finished or gave up on `task` (or went past it)."""
    if not marker or marker.startswith("in "):
        fields = (marker or "").split()
        return len(fields) >= 2 and fields[1].isdigit() and int(fields[1]) > task
    return int(marker.split()[1]) >= task


def first_failure(view: GroupView, task: int) -> Stopped | None:
    """The other rank that gave up on `task` first, if it did so before this one, with its reason."""
    for rank in range(view.world_size):
        marker = _read(view.store, f"at/{rank}") if view.store is not None else None
        if rank != view.rank and marker and marker.startswith(f"failed {task} #1:"):
            return Stopped(rank, "failed", marker.split(": ", 1)[1])
    return None


def stopped_ranks(view: GroupView, task: int, check_id: str, *, group_timeout_s: float,
                  settle_s: float = DEAD_AFTER_S + HEARTBEAT_S) -> list[Stopped]:
    """The ranks that neither finished nor gave up on `task`, each judged dead (heartbeat stopped) or hung.

    Called by a survivor after a collective of `task` failed (and after it marked itself failed). A peer that
    still beats may only be blocked on another rank, and will fail too within the group timeout: so a rank is
    called hung only if it is still in the check a whole group timeout (plus settling time) later. Dead ranks
    are known sooner: their beat stops moving for DEAD_AFTER_S.
    """
    if view.store is None:
        return []
    deadline = time.monotonic() + group_timeout_s + settle_s
    last_beat: dict[int, tuple[str | None, float]] = {}
    while True:
        now = time.monotonic()
        found: dict[int, Stopped] = {}
        for rank in range(view.world_size):
            marker = _read(view.store, f"at/{rank}")
            if rank == view.rank or _settled(marker, task):
                continue
            beat = _read(view.store, f"beat/{rank}")
            seen, since = last_beat.get(rank, (None, now))
            if beat != seen or rank not in last_beat:
                last_beat[rank] = (beat, now)
                since = now
            dead = beat is None or now - since > DEAD_AFTER_S
            found[rank] = Stopped(rank, "died" if dead else "hung", check_id if marker else "start-up")
        if not found or all(s.kind == "died" for s in found.values()) or now >= deadline:
            return [found[r] for r in sorted(found)]
        time.sleep(HEARTBEAT_S / 2)
