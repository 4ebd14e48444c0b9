"""`acceldoctor check` as a user runs it: exit codes, the report file, partial reports."""

import json
import os
import signal
import subprocess
import sys
import time

from acceldoctor.docgen import report_json_schema


def test_healthy_run_exits_0_and_writes_a_valid_report(cli, tmp_path):
    import jsonschema

    path = tmp_path / "report.json"
    proc = cli("check", "--select", "correctness.matmul", "--json", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "healthy: no problem found" in proc.stdout
    report = json.loads(path.read_text())
    jsonschema.validate(report, json.loads(report_json_schema()))
    assert report["schema"] == "acceldoctor.report/1"
    assert report["exit_code"] == 0 and report["finished_at"]
    assert report["summary"]["pass"] == 1
    assert report["devices"][0]["id"] == "cpu"
    assert report["host"]["torch"]
    [result] = report["results"]
    assert result["check"] == result["doc"] == "correctness.matmul"


def test_json_dash_prints_only_the_report_on_stdout(cli):
    proc = cli("check", "--select", "correctness.matmul", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["status"] == "pass"


def test_injected_fault_makes_exit_1_and_names_the_problem(cli, tmp_path):
    path = tmp_path / "r.json"
    proc = cli("check", "--select", "correctness.matmul", "--inject", "matmul-wrong-fp16", "--json", str(path))
    assert proc.returncode == 1
    assert "1 problem(s) found" in proc.stdout
    result = json.loads(path.read_text())["results"][0]
    assert result["status"] == "fail" and "float16" in result["message"]


def test_killed_run_leaves_a_readable_partial_report(tmp_path):
    path = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "acceldoctor", "check", "--select", "correctness.matmul",
         "--select", "determinism.matmul", "--inject", "hang-matmul", "--timeout", "1",
         "--json", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and json.loads(path.read_text())["results"]:
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    report = json.loads(path.read_text())
    assert report["finished_at"] is None and report["exit_code"] is None
    assert report["results"][0]["status"] == "timeout"
    assert report["summary"]["timeout"] >= 1


def test_sigterm_leaves_a_partial_report_exit_143_and_no_worker_behind(tmp_path):
    path = tmp_path / "terminated.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "acceldoctor", "check", "--select", "correctness.matmul",
         "--select", "determinism.matmul", "--inject", "hang-matmul", "--timeout", "300", "--json", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (path.exists() and _worker_pids(proc.pid)):
        time.sleep(0.2)
    workers = _worker_pids(proc.pid)
    assert workers, "the run never started its worker"
    time.sleep(1.0)  # let the worker take the hanging check
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert stderr.strip().splitlines()[-1] == f"acceldoctor: error: terminated; the partial report is in {path}"
    report = json.loads(path.read_text())
    assert report["finished_at"] is None and report["results"] == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(workers):
        time.sleep(0.2)
    assert not _alive(workers), f"a worker outlived the run: {_alive(workers)}"


def test_report_file_is_readable_by_others_like_any_file_the_user_writes(cli, tmp_path):
    path = tmp_path / "r.json"
    old = os.umask(0o022)
    try:
        assert cli("check", "--select", "determinism.reduction", "--json", str(path)).returncode == 0
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def _worker_pids(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                children.append(int(entry))
    return children


def _alive(pids: list[int]) -> list[str]:
    """Command lines of the processes still running (zombies count as gone)."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{pid}/cmdline") as f:
                alive.append(f.read().replace("\0", " "))
        except OSError:
            continue
    return alive
