"""Join a torch.distributed group, know who is in it, and tell which rank stopped when a collective breaks.

The same code serves `acceldoctor check --nproc N` (the parent hosts the key-value store and starts the
ranks) and `torchrun ... -m acceldoctor check` (torchrun's agent hosts it; its environment names it).
Besides the process group, every rank keeps two entries in the store:
- `at/<rank>`: the check it is in, or `done <check>` once it finished it;
- `alive/<rank>`: a wall-clock heartbeat refreshed every second by a background thread.
When a collective fails on a survivor (a peer died, or stopped answering until the group timeout), these
entries say which rank is behind and whether its process is still alive (hung) or gone (died), so the
survivors can name it without any collective (the group is broken by then).
"""

from __future__ import annotations

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


def endpoint_from_env(environ: dict[str, str] | None = None) -> Endpoint | None:
    """The torchrun-style environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), or None when not launched so."""
    env = os.environ if environ is None else environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
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


def device_for_rank(device_type: str, local_rank: int) -> str:
    return "cpu" if device_type == "cpu" else f"{device_type}:{local_rank}"


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
                client.set(f"alive/{endpoint.rank}", repr(time.time()))
            except Exception:  # the store went away: the run is over
                return
            time.sleep(HEARTBEAT_S)

    threading.Thread(target=beat, name="acceldoctor-heartbeat", daemon=True).start()


def mark(view: GroupView, what: str) -> None:
    """Record where this rank is (`<check>` while in it, `done <check>` or `failed <check>` after)."""
    if view.store is not None:
        view.store.set(f"at/{view.rank}", what)


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
    kind: str  # "died" or "hung"
    where: str  # the check it was in


def stopped_ranks(view: GroupView, check_id: str, *, settle_s: float = DEAD_AFTER_S + HEARTBEAT_S) -> list[Stopped]:
    """The ranks that neither finished nor gave up on `check_id`, each judged dead (heartbeat stopped) or hung.

    Called by a survivor after a collective of `check_id` failed (and after it marked itself `failed <check>`).
    It watches for up to `settle_s`: a dying peer's heartbeat needs that long to go stale, and a fellow
    survivor needs a moment to mark itself failed, so that neither is mistaken for a hung rank.
    """
    if view.store is None:
        return []
    settled = {f"done {check_id}", f"failed {check_id}"}
    found: dict[int, Stopped] = {}
    deadline = time.time() + settle_s
    while True:
        found = {}
        for rank in range(view.world_size):
            where = _read(view.store, f"at/{rank}") or "start-up"
            if rank == view.rank or where in settled:
                continue
            beat = _read(view.store, f"alive/{rank}")
            age = time.time() - float(beat) if beat else float("inf")
            found[rank] = Stopped(rank, "died" if age > DEAD_AFTER_S else "hung", where)
        if all(s.kind == "died" for s in found.values()) or time.time() >= deadline:
            return [found[r] for r in sorted(found)]
        time.sleep(HEARTBEAT_S / 2)
