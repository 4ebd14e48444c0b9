"""launch_local: real gloo ranks; a rank that dies or hangs is named, and the run ends in bounded time."""

import os
import time

import torch
import torch.distributed as dist

from acceldoctor.interconnect.launch import backend_for, launch_local

GROUP_TIMEOUT_S = 5


def sum_of_ranks(ctx, fail_mode=None):
    x = torch.tensor([float(ctx.rank)])
    dist.all_reduce(x)
    if ctx.rank == 1 and fail_mode == "die":
        os._exit(3)  # like a rank killed mid-job
    if ctx.rank == 1 and fail_mode == "hang":
        time.sleep(3600)  # like a rank stuck in a kernel
    dist.all_reduce(x)
    return float(x.item())


def test_every_rank_returns_its_result():
    outcome = launch_local(3, sum_of_ranks, group_timeout_s=GROUP_TIMEOUT_S, deadline_s=60)
    assert outcome.ok, outcome.failures
    assert outcome.results == {0: 9.0, 1: 9.0, 2: 9.0}  # (0+1+2) summed twice across 3 ranks


def test_a_dying_rank_is_named_and_the_survivors_give_up_in_bounded_time():
    outcome = launch_local(3, sum_of_ranks, ("die",), group_timeout_s=GROUP_TIMEOUT_S, deadline_s=60)
    assert outcome.failures[0].rank == 1 and outcome.failures[0].kind == "died"
    assert "exit code 3" in outcome.failures[0].message
    assert {f.rank for f in outcome.failures if f.kind == "error"} == {0, 2}
    assert outcome.seconds < 45


def test_a_hanging_rank_is_stopped_and_named():
    outcome = launch_local(2, sum_of_ranks, ("hang",), group_timeout_s=GROUP_TIMEOUT_S, deadline_s=12)
    assert [(f.rank, f.kind) for f in outcome.failures] == [(1, "hung"), (0, "error")]
    assert outcome.seconds < 30


def test_backend_follows_the_device_type():
    assert [backend_for(t) for t in ("cuda", "npu", "xpu", "cpu", "mps")] == ["nccl", "hccl", "xccl", "gloo", "gloo"]
