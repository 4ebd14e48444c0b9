"""What goes into a bundle: each collector on its own, the redacted and capped copy of logs, and the archive as a
whole (written whole or not at all)."""

import json
import os
import signal
import time

import pytest

from acceldoctor.bundle import collect, tools
from acceldoctor.bundle.collect import Item, Skipped


def _tool(folder, name, script):
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


@pytest.fixture
def only_these_tools(tmp_path, monkeypatch):
    """PATH holding nothing but a folder of fake tools (and sh, cat, sleep for them)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for helper in ("sh", "cat", "sleep", "echo"):
        for system in ("/bin", "/usr/bin"):
            if os.path.exists(f"{system}/{helper}"):
                (folder / helper).symlink_to(f"{system}/{helper}")
                break
    monkeypatch.setenv("PATH", str(folder))
    return folder


def test_tools_on_path_run_and_missing_ones_are_named(only_these_tools):
    _tool(only_these_tools, "nvidia-smi", "echo \"nvidia-smi $*\"; echo 'Authorization: Bearer abcdefgh12345678'\n")
    _tool(only_these_tools, "amd-smi", "echo \"amd-smi $*\"; exit 3\n")
    collected = {c.name: c for c in tools.collect_tools(timeout=10)}
    topo = collected["tools/nvidia-smi-topo.txt"]
    assert isinstance(topo, Item) and b"nvidia-smi topo -m" in topo.data and topo.data.startswith(b"$ nvidia-smi")
    rocm = collected["tools/rocm-smi.txt"]
    assert isinstance(rocm, Item) and b"amd-smi static" in rocm.data and rocm.note == "exit status 3"
    missing = collected["tools/npu-smi-info.txt"]
    assert isinstance(missing, Skipped) and missing.reason == "npu-smi not on PATH"
    assert isinstance(collected["tools/lspci.txt"], Skipped)


def test_a_hanging_tool_is_stopped_at_its_timeout(only_these_tools):
    _tool(only_these_tools, "xpu-smi", "echo started; sleep 60\n")
    start = time.monotonic()
    code, out, note = tools.run_tool(["xpu-smi", "discovery"], timeout=0.5)
    assert time.monotonic() - start < 10
    assert code is None and note == "timed out after 0.5 s" and out == b"started\n"


def test_output_beyond_the_cap_stops_the_tool(only_these_tools):
    _tool(only_these_tools, "lspci", "while :; do echo 0123456789abcdef; done\n")
    start = time.monotonic()
    code, out, note = tools.run_tool(["lspci"], timeout=30, max_bytes=100_000)
    assert time.monotonic() - start < 10
    assert code is None and len(out) == 100_000 and out.startswith(b"0123456789abcdef\n")
    assert note == "output cut at 100000 bytes; stopped there"


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # dead, its parent not yet told
    except FileNotFoundError:
        return True


def test_ctrl_c_while_a_tool_runs_kills_it_and_its_children(only_these_tools, tmp_path):
    pid_file = tmp_path / "child.pid"
    _tool(only_these_tools, "xpu-smi", f"sleep 60 & echo $! > {pid_file}; wait\n")

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(KeyboardInterrupt):
            tools.run_tool(["xpu-smi"], timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)


def test_kernel_log_says_why_when_nothing_is_readable(only_these_tools):
    [result] = tools.collect_kernel_log(timeout=5)
    if isinstance(result, Item):  # a host with a readable /var/log/kern.log
        assert result.source == "/var/log/kern.log"
    else:
        assert "dmesg: not on PATH" in result.reason and "journalctl: not on PATH" in result.reason


def test_environment_keeps_the_stack_variables_only_and_withholds_secrets():
    environ = {"NCCL_DEBUG": "INFO", "CUDA_VISIBLE_DEVICES": "0,1", "RANK": "3", "HOME": "/home/x",
               "AWS_SECRET_ACCESS_KEY": "nope", "NCCL_SOCKET_TOKEN": "s3cr3t", "LD_LIBRARY_PATH": "/opt/a",
               "TORCH_STORE": "http://u:p@h:1", "HCCL_MULTI": "a\nb\\c"}
    [item] = collect.collect_environment(environ)
    lines = item.data.decode().splitlines()
    assert lines[0].startswith("# 7 of 9 environment variables")
    assert lines[1:] == ["CUDA_VISIBLE_DEVICES=0,1", "HCCL_MULTI=a\\nb\\\\c", "LD_LIBRARY_PATH=/opt/a",
                         "NCCL_DEBUG=INFO", "NCCL_SOCKET_TOKEN=<redacted>", "RANK=3",
                         "TORCH_STORE=http://<redacted>@h:1"]
    assert item.counts == {"secret_env": 1, "url_credentials": 1}


def test_pip_freeze_lists_every_distribution_sorted():
    [item] = collect.collect_pip_freeze()
    lines = item.data.decode().splitlines()
    assert any(line.startswith("torch==") for line in lines) and any(line.startswith("typer==") for line in lines)
    assert lines == sorted(lines, key=lambda line: line.split("==")[0].lower().replace("_", "-").replace(".", "-"))
    assert all("==" in line for line in lines)


def test_versions_and_devices_describe_this_host():
    inventory = collect.discover_devices()
    versions = json.loads(next(i for i in collect.collect_versions(inventory) if i.name == "versions.json").data)
    assert versions["host"]["torch"] and versions["kernel"] and versions["python"].startswith("3.")
    assert any(d["id"] == "cpu" for d in versions["devices"])
    [devices] = collect.collect_devices(inventory)
    assert json.loads(devices.data)["devices"][-1]["id"] == "cpu"
    [failed] = collect.collect_devices(RuntimeError("no driver"))
    assert isinstance(failed, Skipped) and "RuntimeError: no driver" in failed.reason


def _report(path, age_s=0):
    path.write_text(json.dumps({"schema": "acceldoctor.report/1", "run_id": path.stem, "results": []}, indent=2))
    then = time.time() - age_s
    os.utime(path, (then, then))


def test_reports_are_found_by_schema_newest_first_or_taken_as_given(tmp_path):
    for i in range(3):
        _report(tmp_path / f"r{i}.json", age_s=100 * i)
    (tmp_path / "other.json").write_text('{"schema": "something/1"}')
    (tmp_path / "broken.json").write_text('{"schema": "acceldoctor.report/1", ')
    assert [p.name for p in collect.find_reports(tmp_path, limit=2)] == ["r0.json", "r1.json"]
    found = collect.collect_reports(None, tmp_path)
    assert [i.name for i in found] == ["reports/r0.json", "reports/r1.json", "reports/r2.json"]
    given = collect.collect_reports([tmp_path / "broken.json", tmp_path / "gone.json", tmp_path / "r0.json"],
                                    tmp_path)
    assert [(type(c).__name__, c.name) for c in given] == [
        ("Item", "reports/broken.json"), ("Skipped", "reports/gone.json"), ("Item", "reports/r0.json")]
    assert given[0].kind == "text" and given[1].reason == "no such file"
    [none] = collect.collect_reports(None, tmp_path / "r0.json")
    assert isinstance(none, Skipped)


def test_explain_redacts_templates_made_from_secret_lines(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("FeederError: bad key sk-proj-AbC123dEf456GhI789jKl0 and xoxb-123456789012-AbCdEfGhIjKl\n")
    [item] = collect.collect_explain([log])
    document = json.loads(item.data)
    [group] = document["unrecognized"]
    assert group["template"] == "FeederError: bad key <redacted> and <redacted>"
    assert document["exit_code"] == 1 and item.note.startswith("exit code 1")
    assert collect.collect_explain([]) == [Skipped("explain.json", "no logs given")]
