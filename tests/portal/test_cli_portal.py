"""The portal from the command line, end to end: `acceldoctor serve` in a subprocess on a free port, and
`acceldoctor portal token create`, `upload`, `check --upload` and `feedback` talking to it as a user would."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli

from .conftest import _empty_postgres, failing, make_report


@dataclass
class Served:
    url: str
    token: str
    log: Path

    def get(self, path: str) -> dict:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"acceldoctor serve exited with {process.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"acceldoctor serve did not become healthy: {log.read_text()}")


def create_token(db: str, role: str, name: str) -> str:
    """`acceldoctor portal token create`: the token, alone on the last line of what it prints."""
    created = run_cli("portal", "token", "create", "--role", role, "--db", db, "--name", name)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("adp_") and " " not in token
    return token


@contextlib.contextmanager
def running_portal(db: str, folder: Path) -> Iterator[str]:
    """A real `acceldoctor serve` on a free port (its log in folder/serve.log) until the block ends: its URL."""
    port, log = free_port(), folder / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "acceldoctor", "serve", "--db", db, "--port", str(port)],
                                   stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("acceldoctor: error:"), proc.stderr
    assert "Traceback" not in proc.stderr and all(w in lines[0] for w in words), lines[0]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"served-{request.param}")
    if request.param == "sqlite":
        db = f"sqlite:///{folder / 'portal.db'}"
    else:
        db = request.getfixturevalue("postgres_url")
        _empty_postgres(db).dispose()
    token = create_token(db, "admin", "ci")
    with running_portal(db, folder) as url:
        yield Served(url, token, folder / "serve.log")


def test_upload_stores_once_and_says_what_it_stored(served, tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps(make_report("node-cli", results=[failing()])))
    explain = tmp_path / "explain.json"
    explain.write_text(json.dumps({"schema": "acceldoctor.explain/1", "findings": [], "unrecognized": [
        {"template": "FATAL: link <NUM> down", "count": 2, "examples": ["FATAL: link 3 down"]}]}))
    args = ("upload", str(report), str(explain), "--url", served.url, "--token", served.token, "--host", "node-cli")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert "stored check" in lines[0] and "1 event(s) in 1 problem(s) (1 new)" in lines[0]
    assert "stored explain" in lines[1] and "from node-cli" in lines[1]
    again = run_cli(*args)
    assert again.returncode == 0 and again.stdout.count("already stored") == 2
    assert served.get("/api/v1/reports?host=node-cli")["total"] == 2
    logged = [json.loads(line) for line in served.log.read_text().splitlines() if line.startswith("{")]
    assert any(entry.get("message") == "upload" and entry.get("host") == "node-cli" for entry in logged)


def test_feedback_from_the_command_line(served, tmp_path):
    log = tmp_path / "train.log"
    log.write_text("epoch 1\nFATAL: link 9 down\n")
    proc = run_cli("feedback", "link flaps", "--severity", "high", "--attach", str(log), "--url", served.url,
                   "--token", served.token)
    assert proc.returncode == 0, proc.stderr
    assert "filed feedback" in proc.stdout and "linked to 1 problem(s)" in proc.stdout


SQLITE_ONLY = pytest.mark.parametrize("served", ["sqlite"], indirect=True)  # the same on both backends


@SQLITE_ONLY
def test_check_upload(served, tmp_path):
    proc = run_cli("check", "--select", "environment.memory_alloc", "--upload", served.url,
                   env={"ACCELDOCTOR_TOKEN": served.token})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stored check" in proc.stdout
    host = socket.gethostname()
    listed = served.get(f"/api/v1/reports?host={host}")
    assert listed["total"] == 1 and listed["items"][0]["summary"]["pass"] >= 1


@SQLITE_ONLY
def test_cli_errors_are_one_line(served, tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps(make_report()))
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    closed = f"http://127.0.0.1:{free_port()}"
    one_line_error(run_cli("upload", str(report), "--url", closed, "--token", "t"), "cannot reach")
    one_line_error(run_cli("upload", str(not_json), "--url", served.url, "--token", "t"), "not JSON")
    one_line_error(run_cli("upload", str(tmp_path / "missing.json"), "--url", served.url, "--token", "t"),
                   "cannot read")
    one_line_error(run_cli("upload", str(report), "--url", served.url, "--token", "adp_x_y"), "401")
    one_line_error(run_cli("upload", str(report), "--url", served.url, env={"ACCELDOCTOR_TOKEN": ""}), "token")
    one_line_error(run_cli("upload", str(report), "--url", "ftp://x", "--token", "t"), "http")
    one_line_error(run_cli("feedback", "t", "--url", served.url, "--token", "t", "--severity", "urgent"), "severity")
    one_line_error(run_cli("check", "--upload", "nonsense", "--token", "t"), "http")
    one_line_error(run_cli("portal", "token", "create", "--role", "boss"), "role")
    one_line_error(run_cli("serve", "--db", "bogus://nowhere"), "database")
    for skew in ("inf", "nan", "-1"):  # "believe every node" must be said with a number, not crash each upload
        one_line_error(run_cli("serve", "--max-clock-skew", skew), "--max-clock-skew")
    port = int(served.url.rsplit(":", 1)[1])
    one_line_error(run_cli("serve", "--db", f"sqlite:///{tmp_path / 'p.db'}", "--port", str(port)), "cannot listen")


def test_serve_without_the_portal_extra_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['fastapi'] = None; sys.argv = ['acceldoctor', 'serve']; "
            "from acceldoctor.cli.app import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    one_line_error(proc, "pip install 'acceldoctor[portal]'")


def test_concurrent_uploads_lose_nothing_and_store_nothing_twice(served):
    """16 clients at once, each report sent twice (a retry): every report stored once, every event counted once."""
    from concurrent.futures import ThreadPoolExecutor

    from acceldoctor.portal.client import Upload, upload

    reports = [make_report(f"burst-{i % 8}", results=[failing(check="burst.check")]) for i in range(48)]

    def send(report: dict) -> list[bool]:
        body = json.dumps(report).encode()
        item = Upload("-", report, body)
        return [upload(served.url, served.token, item, "x")["stored"] for _ in range(2)]

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(send, reports))
    assert outcomes == [[True, False]] * len(reports)
    assert served.get("/api/v1/reports?host=burst-3")["total"] == 6
    [problem] = [p for p in served.get("/api/v1/problems?limit=500")["items"] if p["key"] == "burst.check"]
    assert problem["count"] == 48 and problem["node_count"] == 8
