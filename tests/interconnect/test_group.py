"""Reading torchrun's environment, and telling a dead rank from a hung one through the group's store."""

import datetime
import threading
import time

import pytest
import torch.distributed as dist

from acceldoctor.interconnect.group import (
    DEAD_AFTER_S,
    GroupView,
    RankInfo,
    endpoint_from_env,
    first_failure,
    mark_failed,
    stopped_ranks,
)


def test_torchrun_environment_is_read_and_who_hosts_the_store_follows_the_agent_flag():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29511",
           "TORCHELASTIC_USE_AGENT_STORE": "True"}
    endpoint = endpoint_from_env(env)
    assert (endpoint.rank, endpoint.world_size, endpoint.local_rank) == (3, 8, 1)
    assert (endpoint.address, endpoint.port, endpoint.host_store) == ("node0", 29511, False)
    # a plain launcher without torchrun's agent: rank 0 hosts the store
    plain = endpoint_from_env({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    assert plain.host_store and plain.local_rank == 0 and plain.port == 29500
    assert endpoint_from_env({}) is None
    # RANK and WORLD_SIZE alone are a scheduler's per-pod numbers (Kubeflow), not torchrun's ranks
    assert endpoint_from_env({"RANK": "1", "WORLD_SIZE": "4"}) is None


@pytest.mark.parametrize("env, problem", [
    ({"RANK": "two", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}, "malformed"),
    ({"RANK": "4", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}, "outside WORLD_SIZE"),
])
def test_a_malformed_environment_is_refused_with_the_reason(env, problem):
    with pytest.raises(ValueError, match=problem):
        endpoint_from_env(env)


def test_a_malformed_environment_is_a_one_line_usage_error(cli):
    proc = cli("check", "--level", "standard", "--select", "interconnect.all_reduce",
               env={"RANK": "5", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    assert proc.returncode == 2 and "outside WORLD_SIZE" in proc.stderr and "Traceback" not in proc.stderr


def _view(rank=0):
    server = dist.TCPStore("127.0.0.1", 0, None, True, timeout=datetime.timedelta(seconds=5),
                           wait_for_workers=False)
    return GroupView(rank, 4, "gloo", [RankInfo(r, "h", "cpu") for r in range(4)],
                     dist.PrefixStore("acceldoctor", server)), server


def test_a_survivor_names_the_rank_behind_it_and_whether_it_still_beats():
    view, _server = _view()
    store = view.store
    mark_failed(view, 2, "RuntimeError: Connection closed by peer")
    store.set("at/1", "failed 2 #2: RuntimeError: timed out")  # a fellow survivor
    store.set("at/2", "in 2 interconnect.all_reduce")  # still in it, and its beat moves: hung
    store.set("at/3", "in 2 interconnect.all_reduce")  # still in it, beat frozen: died
    store.add("beat/3", 7)
    stop = threading.Event()

    def beat():  # rank 2's heartbeat thread, alive though the rank is stuck
        while not stop.is_set():
            store.add("beat/2", 1)
            time.sleep(0.2)

    threading.Thread(target=beat, daemon=True).start()
    begin = time.monotonic()
    found = stopped_ranks(view, 2, "interconnect.all_reduce", group_timeout_s=1.0, settle_s=DEAD_AFTER_S + 0.5)
    stop.set()
    assert [(s.rank, s.kind, s.where) for s in found] == [(2, "hung", "interconnect.all_reduce"),
                                                           (3, "died", "interconnect.all_reduce")]
    assert time.monotonic() - begin < 15  # bounded by the group timeout and the settling time


def test_a_rank_still_blocked_on_a_survivor_is_not_called_hung_once_it_gives_up():
    view, _server = _view()
    mark_failed(view, 0, "RuntimeError: Connection closed by peer")
    view.store.set("at/1", "in 0 interconnect.p2p")  # blocked, not yet timed out; it gives up after a moment
    view.store.set("at/2", "done 0")
    view.store.set("at/3", "in 1 interconnect.stragglers")  # already past this check

    def gives_up():
        time.sleep(1.0)
        view.store.set("at/1", "failed 0 #2: RuntimeError: timed out")

    helper = threading.Thread(target=gives_up, daemon=True)
    helper.start()
    view.store.add("beat/1", 1)
    beating = threading.Event()

    def beat():
        while not beating.is_set():
            view.store.add("beat/1", 1)
            time.sleep(0.2)

    threading.Thread(target=beat, daemon=True).start()
    found = stopped_ranks(view, 0, "interconnect.p2p", group_timeout_s=5.0)
    beating.set()
    assert found == []


def test_the_rank_that_failed_first_is_named_with_its_own_error():
    view, _server = _view(rank=3)
    first = GroupView(1, 4, "gloo", view.members, view.store)
    assert mark_failed(first, 5, "torch.OutOfMemoryError: CUDA out of memory") == 1
    assert mark_failed(view, 5, "RuntimeError: timed out") == 2
    failure = first_failure(view, 5)
    assert (failure.rank, failure.kind) == (1, "failed") and "out of memory" in failure.where
