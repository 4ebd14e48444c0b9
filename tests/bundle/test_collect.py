"""What goes into a bundle: each collector on its own, the redacted and capped copy of logs, and the archive as a
whole (written whole or not at all)."""

import gzip
import json
import os
import tarfile
import time

import pytest

from acceldoctor.bundle import BundleRequest, build_bundle, collect, tools
from acceldoctor.bundle.collect import Item, Skipped
from acceldoctor.bundle.logs import copy_redacted
from acceldoctor.explain.reader import LogReadError


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


def _lines(n, width=60):
    return "".join(f"line {i:06d} " + "x" * (width - 13) + "\n" for i in range(n))


def test_a_log_over_the_cap_keeps_its_last_whole_lines(tmp_path):
    log = tmp_path / "big.log"
    log.write_text(_lines(1000))
    copied = copy_redacted(log, cap=6000)
    data = copied.reader.read(-1)
    assert len(data) == copied.size <= 6000 and copied.truncated and not copied.compressed
    assert data.startswith(b"line ") and data.endswith(b"line 000999 " + b"x" * 47 + b"\n")
    assert copied.text_bytes == copied.file_bytes == 60000
    copied.close()


def test_a_gzip_log_is_decompressed_and_its_tail_kept_in_bounded_storage(tmp_path):
    log = tmp_path / "big.log.gz"
    log.write_bytes(gzip.compress((_lines(5000) + "password=hunter2\n").encode()))
    copied = copy_redacted(log, cap=10000)
    data = copied.reader.read(-1)
    assert len(data) == copied.size <= 10000 and copied.truncated and copied.compressed
    assert data.startswith(b"line ") and data.endswith(b"password=<redacted>\n")
    assert copied.text_bytes == 5000 * 60 + 17 and copied.counts == {"secret_pair": 1}
    copied.close()


def test_a_key_cut_by_the_cap_leaks_none_of_its_lines(tmp_path):
    log = tmp_path / "key.log"
    body = [f"KEYMATERIAL{i:04d}" + "Q" * 50 for i in range(100)]
    log.write_text(_lines(100) + "-----BEGIN PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END PRIVATE KEY-----\n"
                   + "after the key\n")
    copied = copy_redacted(log, cap=3000)
    data = copied.reader.read(-1)
    assert b"KEYMATERIAL" not in data and data == b"-----END PRIVATE KEY-----\nafter the key\n"
    copied.close()


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"\x7fELF\x00\x00\x01binary"), "binary file, not a text log"),
    (lambda p: p.write_bytes(b"\x1f\x8b\x08 not really gzip"), "corrupt or truncated compressed data"),
])
def test_a_log_that_cannot_be_copied_says_why(tmp_path, make, reason):
    path = tmp_path / "x.log"
    make(path)
    with pytest.raises(LogReadError, match=reason):
        copy_redacted(path, cap=1000)


def test_the_bundle_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "b.tgz"
    out.write_bytes(b"previous bundle")

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(collect, "collect_pip_freeze", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_bundle(BundleRequest(output=out, cwd=tmp_path, environ={}))
    assert out.read_bytes() == b"previous bundle" and sorted(p.name for p in tmp_path.iterdir()) == ["b.tgz"]


def test_a_failing_collector_costs_only_its_item(tmp_path, monkeypatch):
    def broken():
        raise ValueError("metadata is corrupt")

    monkeypatch.setattr(collect, "collect_pip_freeze", broken)
    (tmp_path / "a.log").write_text("hello\n")
    out = tmp_path / "b.tar.gz"
    result = build_bundle(BundleRequest(output=out, logs=[tmp_path / "a.log", tmp_path / "gone.log", out],
                                        cwd=tmp_path, environ={}))
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    skipped = {s.name: s for s in result.skipped}
    assert "ValueError: metadata is corrupt" in skipped["pip-freeze.txt"].reason
    assert skipped["logs/gone.log"].reason == "no such file" and skipped["logs/gone.log"].source.endswith("gone.log")
    with tarfile.open(out) as tar:
        names = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()]
    assert names[-1] == "manifest.json" and "logs/a.log" in names and "logs/b.tar.gz" not in names
    assert result.folder.startswith("acceldoctor-bundle-") and result.folder.endswith("Z")
