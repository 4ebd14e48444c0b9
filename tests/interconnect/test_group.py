"""Reading torchrun's environment, and telling a dead rank from a hung one through the group's store."""

import datetime
import time

import pytest
import torch.distributed as dist

from acceldoctor.interconnect.group import DEAD_AFTER_S, GroupView, RankInfo, endpoint_from_env, stopped_ranks


def test_torchrun_environment_is_read_and_who_hosts_the_store_follows_the_agent_flag():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29511",
           "TORCHELASTIC_USE_AGENT_STORE": "True"}
    endpoint = endpoint_from_env(env)
    assert (endpoint.rank, endpoint.world_size, endpoint.local_rank) == (3, 8, 1)
    assert (endpoint.address, endpoint.port, endpoint.host_store) == ("node0", 29511, False)
    # a plain launcher without torchrun's agent: rank 0 hosts the store
    plain = endpoint_from_env({"RANK": "0", "WORLD_SIZE": "2"})
    assert plain.host_store and plain.local_rank == 0 and plain.port == 29500
    assert endpoint_from_env({}) is None


@pytest.mark.parametrize("env, problem", [
    ({"RANK": "two", "WORLD_SIZE": "4"}, "malformed"),
    ({"RANK": "4", "WORLD_SIZE": "4"}, "outside WORLD_SIZE"),
])
def test_a_malformed_environment_is_refused_with_the_reason(env, problem):
    with pytest.raises(ValueError, match=problem):
        endpoint_from_env(env)


def test_a_malformed_environment_is_a_one_line_usage_error(cli):
    proc = cli("check", "--level", "standard", "--select", "interconnect.all_reduce",
               env={"RANK": "5", "WORLD_SIZE": "2"})
    assert proc.returncode == 2 and "outside WORLD_SIZE" in proc.stderr and "Traceback" not in proc.stderr


def test_a_survivor_names_the_rank_behind_it_and_whether_it_still_beats():
    server = dist.TCPStore("127.0.0.1", 0, None, True, timeout=datetime.timedelta(seconds=5),
                           wait_for_workers=False)
    store = dist.PrefixStore("acceldoctor", server)
    view = GroupView(0, 4, "gloo", [RankInfo(r, "h", "cpu") for r in range(4)], store)
    now = time.time()
    store.set("at/0", "failed interconnect.all_reduce")
    store.set("at/1", "failed interconnect.all_reduce")  # a fellow survivor
    store.set("at/2", "interconnect.all_reduce")  # still in it, heartbeat fresh: hung
    store.set("alive/2", repr(now + 60))
    store.set("at/3", "interconnect.all_reduce")  # still in it, heartbeat long gone: died
    store.set("alive/3", repr(now - 2 * DEAD_AFTER_S))
    found = stopped_ranks(view, "interconnect.all_reduce", settle_s=0.5)
    assert [(s.rank, s.kind, s.where) for s in found] == [(2, "hung", "interconnect.all_reduce"),
                                                           (3, "died", "interconnect.all_reduce")]
