"""`acceldoctor check --nproc N` and `torchrun ... -m acceldoctor check` as a user runs them, on CPU ranks (gloo)."""

import json
import os
import subprocess
import sys
import time

import pytest

from acceldoctor.interconnect.launch import free_port

SMALL = [f"--param=interconnect.{op}.max_bytes=65536"
         for op in ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "send_recv")]


def _results(path):
    return json.loads(path.read_text())["results"]


def test_two_ranks_run_every_interconnect_check_into_one_report(cli, tmp_path):
    out = tmp_path / "r.json"
    proc = cli("check", "--level", "standard", "--select", "interconnect.*", "--nproc", "2", *SMALL,
               "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = _results(out)
    by_check = {}
    for result in results:
        by_check.setdefault(result["check"], []).append(result)
        assert result["host"] and result["device"] == "cpu"
    assert len(by_check) == 8
    for check, ranked in by_check.items():
        assert sorted(r["rank"] for r in ranked) == [0, 1], check
    # three ranks are needed to tell a straggler: with two it is skipped, saying what to do
    assert {r["status"] for r in by_check["interconnect.stragglers"]} == {"skip"}
    assert "--nproc 3" in by_check["interconnect.stragglers"][0]["message"]
    reduce = by_check["interconnect.all_reduce"][0]
    metrics = {m["name"]: m["value"] for m in reduce["metrics"]}
    assert metrics["busbw_gbps"] > 0 and metrics["wrong_elements"] == 0 and "busbw_gbps@64KiB" in metrics
    # what a person reads: bandwidth per size like nccl-tests, and the point-to-point matrix
    assert "bus bandwidth (GB/s) and time (us) per message size" in proc.stdout
    assert "point to point" in proc.stdout and "cpu rank 1" in proc.stdout


def test_a_corrupting_rank_among_four_is_named_and_fails_the_run(cli, tmp_path):
    out = tmp_path / "r.json"
    proc = cli("check", "--level", "standard", "--select", "interconnect.all_gather", "--nproc", "4", *SMALL,
               "--inject", "corrupt-rank:2", "--json", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = _results(out)
    assert len(results) == 4 and all(r["status"] == "fail" for r in results)
    assert all("traced to rank 2 (host" in r["message"] for r in results)


def test_a_dying_rank_is_reported_by_the_survivors_and_the_run_ends(cli, tmp_path):
    out = tmp_path / "r.json"
    begin = time.monotonic()
    proc = cli("check", "--level", "standard", "--select", "interconnect.all_reduce", "--select",
               "interconnect.broadcast", "--nproc", "3", *SMALL, "--inject", "die-rank:1", "--timeout", "20",
               "--json", str(out), timeout=180)
    seconds = time.monotonic() - begin
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = _results(out)
    crashed = [r for r in results if r["status"] == "crash"]
    assert [(r["rank"], r["check"]) for r in crashed] == [(1, "interconnect.all_reduce")]
    survivors = [r for r in results if r["check"] == "interconnect.all_reduce" and r["rank"] != 1]
    assert sorted(r["rank"] for r in survivors) == [0, 2]
    assert all(r["status"] == "error" and "rank 1 (host" in r["message"] and "died" in r["message"]
               for r in survivors)
    # the broken group is not used again: the next check is skipped, saying why
    later = [r for r in results if r["check"] == "interconnect.broadcast"]
    assert later and all(r["status"] == "skip" and "broke" in r["message"] for r in later)
    assert seconds < 120, seconds


def test_without_nproc_one_rank_checks_the_collective_stack(cli, tmp_path):
    out = tmp_path / "r.json"
    proc = cli("check", "--level", "standard", "--select", "interconnect.all_reduce", "--select",
               "interconnect.send_recv", *SMALL, "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = {r["check"]: (r["status"], r["rank"]) for r in _results(out)}
    assert status == {"interconnect.all_reduce": ("pass", 0), "interconnect.send_recv": ("skip", 0)}


@pytest.mark.parametrize("args, expected", [
    (["--select", "correctness.matmul", "--nproc", "2"], "no interconnect check is selected"),
    (["--level", "standard", "--select", "interconnect.all_reduce", "--nproc", "2", "--inject", "corrupt-rank:5"],
     "use --nproc 6 or more"),
    (["--level", "standard", "--select", "interconnect.all_reduce", "--inject", "die-rank"], "this run has 1 rank"),
    (["--level", "standard", "--select", "interconnect.all_reduce", "--nproc", "0"], "--nproc"),
])
def test_impossible_rank_requests_are_one_line_usage_errors(cli, args, expected):
    proc = cli("check", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_two_torchrun_launchers_as_two_hosts_make_one_group(tmp_path):
    """Two launchers, each its own node (node rank 0 and 1), meet over loopback TCP as a multi-node job would."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    nodes = []
    for node in range(2):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
                   "--nproc-per-node", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
                   "--max-restarts", "0", "-m", "acceldoctor", "check", "--level", "standard",
                   "--select", "interconnect.all_reduce", "--select", "interconnect.p2p", *SMALL,
                   "--json", str(tmp_path / f"node{node}.json")]
        nodes.append(subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    if [node.returncode for node in nodes] != [0, 0]:
        # the whole of what each launcher printed, untruncated: a rank's abort is explained near the end
        pytest.fail("\n".join(f"--- launcher {i} (exit {node.returncode}):\n{out[-6000:]}"
                               for i, (node, out) in enumerate(zip(nodes, outputs, strict=True))))
    # global rank 0 lands on one of the nodes; it writes the one report, with all four ranks in it
    written = [p for p in (tmp_path / "node0.json", tmp_path / "node1.json") if p.exists()]
    assert len(written) == 1, outputs
    results = _results(written[0])
    for check in ("interconnect.all_reduce", "interconnect.p2p"):
        assert sorted(r["rank"] for r in results if r["check"] == check) == [0, 1, 2, 3]
    assert all(r["status"] == "pass" for r in results)
    assert sum("global rank 0 writes the report" in out for out in outputs) >= 1


def test_a_slow_link_between_two_ranks_fails_against_a_baseline_of_healthy_runs(cli, tmp_path):
    # With two ranks the p2p matrix has two pairs: which one is "slow" cannot be told by comparing them,
    # but a baseline of healthy runs says what the link should do.
    run = ("check", "--level", "standard", "--select", "interconnect.p2p", "--nproc", "2")
    healthy = [tmp_path / f"healthy-{i}.json" for i in range(2)]
    for path in healthy:
        assert cli(*run, "--json", str(path)).returncode == 0
    baseline = tmp_path / "baseline.json"
    assert cli("baseline", "create", *map(str, healthy), "-o", str(baseline)).returncode == 0
    slow = tmp_path / "slow.json"
    proc = cli(*run, "--baseline", str(baseline), "--inject", "slow-link:0-1", "--json", str(slow))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [sender] = [r for r in _results(slow) if r["rank"] == 0]
    assert sender["status"] == "fail", sender["message"]
    link = next(m for m in sender["metrics"] if m["name"] == "bandwidth_gbps_to_rank1")
    assert link["baseline"] and link["value"] < 0.5 * link["baseline"]


def test_an_unknown_backend_is_a_usage_error(cli):
    proc = cli("check", "--level", "standard", "--select", "interconnect.all_reduce", "--backend", "carrier-pigeon")
    assert proc.returncode == 2 and "carrier-pigeon" in proc.stderr and "gloo" in proc.stderr
