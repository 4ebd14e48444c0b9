"""`acceldoctor bundle` as a user runs it: the archive is written, secrets are not in it, bad logs are named and
skipped, bad output paths are one-line usage errors."""

import json
import tarfile

import pytest

PLANTED = {"TORCH_HUB_TOKEN": "EnvTokenValue8392", "PYTORCH_STORE_URL": "redis://admin:EnvUrlPass77@cache:6379/0"}


def _members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_a_bundle_holds_the_stack_and_the_logs_and_no_secret(cli, tmp_path):
    logs = tmp_path / "job"
    logs.mkdir()
    (logs / "rank0.log").write_text("step 1 loss 2.31\nlogin with password=LogPass1234 ok\n"
                                    "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    out = tmp_path / "support.tar.gz"
    proc = cli("bundle", "-o", str(out), str(logs), str(tmp_path / "missing.log"), env=PLANTED)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"Wrote {out}" in proc.stdout
    assert f"not bundled: {tmp_path / 'missing.log'}: no such file" in proc.stdout
    assert "skipped tools/npu-smi-info.txt: npu-smi not on PATH" in proc.stdout or "npu-smi" not in proc.stdout
    members = _members(out)
    assert {"manifest.json", "versions.json", "devices.json", "pip-freeze.txt", "environment.txt",
            "logs/job/rank0.log", "explain.json"} <= set(members)
    for name, data in members.items():
        for secret in ("EnvTokenValue8392", "EnvUrlPass77", "LogPass1234"):
            assert secret.encode() not in data, (secret, name)
    assert b"login with password=<redacted> ok" in members["logs/job/rank0.log"]
    environment = members["environment.txt"].decode()
    assert "TORCH_HUB_TOKEN=<redacted>" in environment
    assert "PYTORCH_STORE_URL=redis://<redacted>@cache:6379/0" in environment
    manifest = json.loads(members["manifest.json"])
    assert manifest["schema"] == "acceldoctor.bundle/1" and manifest["redactions"] >= 3
    assert {"name": "logs/missing.log", "reason": "no such file", "source": str(tmp_path / "missing.log")} \
        in manifest["skipped"]
    assert json.loads(members["explain.json"])["findings"][0]["category"] == "device_oom"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job", "support.tar.gz"]  # no temporary file left


@pytest.mark.parametrize(("output", "needle"), [
    ("nosuchfolder/b.tar.gz", "does not exist"),
    ("b.zip", "must be a .tar.gz or .tgz file"),
    (".", "must be a .tar.gz or .tgz file"),
])
def test_a_bad_output_path_is_a_one_line_usage_error(cli, tmp_path, output, needle):
    proc = cli("bundle", "-o", str(tmp_path / output))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("acceldoctor: error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_output_is_required(cli):
    missing = cli("bundle")
    assert missing.returncode == 2 and "--output" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "1e308"])
def test_max_log_mb_must_be_a_finite_positive_number(cli, tmp_path, value):
    proc = cli("bundle", "-o", str(tmp_path / "b.tgz"), "--max-log-mb", value)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--max-log-mb must be a finite number more than 0" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "internal error" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
