"""Secrets never leave the machine in a bundle: each kind is redacted wherever it stands (logs, environment, tool
output, reports, the explain result), and ordinary log text — addresses, PCI ids, hashes, losses, plain URLs —
is left alone."""

import gzip
import io
import json
import os
import tarfile
from collections import Counter

import pytest

from acceldoctor.bundle.build import BundleRequest, build_bundle
from acceldoctor.bundle.redact import (
    REDACTED,
    StreamRedactor,
    env_name_is_secret,
    is_secret_key,
    redact_bearer_tokens,
    redact_env_value,
    redact_json,
    redact_private_keys,
    redact_secret_pairs,
    redact_text,
    redact_token_shapes,
    redact_url_credentials,
)

PEM_BODY = ["MIIEpAIBAAKCAQEAplantedKeyLineOne0123456789", "QmFzZTY0cGxhbnRlZEtleUxpbmVUd28wMTIzNDU2Nzg5"]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----"

# kind: (text as it appears, the secret in it, the context around it that must stay)
CASES = {
    "url_credentials": ("store at postgres://admin:Hunter2Pass@db.internal:5432/jobs", "Hunter2Pass",
                        "postgres://<redacted>@db.internal:5432/jobs"),
    "bearer_token": ("curl -H 'Authorization: Bearer AbCdEf0123456789TokenValue' https://api.example.com",
                     "AbCdEf0123456789TokenValue", "Authorization: Bearer <redacted>"),
    "secret_pair": ("connect db_password=CorrectHorse42 user=trainer", "CorrectHorse42",
                    "db_password=<redacted> user=trainer"),
    "json_pair": ('config {"api_key": "JsonKeyValue987", "lr": 0.001}', "JsonKeyValue987",
                  '{"api_key": "<redacted>", "lr": 0.001}'),
    "colon_pair": ("X-Auth-Token: ColonTokenValue55 sent", "ColonTokenValue55", "X-Auth-Token: <redacted> sent"),
    "option": ("launch.py --hf-token OptionTokenValue77 --model llama", "OptionTokenValue77",
               "--hf-token <redacted> --model llama"),
    "aws": ("using key AKIAABCDEFGHIJKLMNOP for s3", "AKIAABCDEFGHIJKLMNOP", "using key <redacted> for s3"),
    "github": ("clone with ghp_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6 ok", "ghp_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6",
               "clone with <redacted> ok"),
    "github_pat": ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz end",
                   "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "pat <redacted> end"),
    "huggingface": ("login hf_QwErTyUiOpAsDfGhJkLzXcVbNm12345678 done", "hf_QwErTyUiOpAsDfGhJkLzXcVbNm12345678",
                    "login <redacted> done"),
    "slack": ("notify xoxb-123456789012-AbCdEfGhIjKl via slack", "xoxb-123456789012-AbCdEfGhIjKl",
              "notify <redacted> via slack"),
    "openai": ("model key sk-proj-AbC123dEf456GhI789jKl0 set", "sk-proj-AbC123dEf456GhI789jKl0",
               "model key <redacted> set"),
    "jwt": ("session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlX3BsYW50ZWQ expires",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlX3BsYW50ZWQ", "session <redacted> expires"),
    "private_key": (f"loaded key:\n{PEM}\nkey loaded", PEM_BODY[0], "-----BEGIN RSA PRIVATE KEY-----\n<redacted>\n"
                    "-----END RSA PRIVATE KEY-----\nkey loaded"),
}
SECRETS = [secret for _, secret, _ in CASES.values()] + [PEM_BODY[1]]

BENIGN = [
    "[rank3]:2024-05-01 12:00:07,123 INFO step=7 loss: 1.2345 lr=3e-4 grad_norm=0.98 tokens/s=15234",
    "illegal memory access at 0x7f3a2b1c4d5e, device 0000:3b:00.0 (PCI 10de:2330), Xid 79",
    "built from commit a3f5c9e1d2b4a3f5c9e1d2b4a3f5c9e1d2b4a3f5 (v2.4.0-rc1)",
    "see https://github.com/pytorch/pytorch/issues/123 and tcp://10.0.0.1:29500 and ssh://git@github.com/org/repo",
    "mail user@example.com; uuid 123e4567-e89b-12d3-a456-426614174000",
    "eos_token_id=2 pad_token=<pad> max_new_tokens=512 max_token=4 num_tokens: 4096",
    "author: Jane Doe, keyboard: us, monkey=3, PWD=/home/jane, key_id=7, token_ids: [1, 2]",
    "NCCL INFO Channel 00/0 : 0[3b000] -> 1[5e000] via P2P/IPC, NCCL_IB_PKEY=0",
    "disk-usage-report-2024-05-01-finished sk-short asia/shanghai",
    "the bearer of bad news; passwords are not logged",
]


@pytest.mark.parametrize("kind", CASES)
def test_each_kind_is_redacted_and_its_context_kept(kind):
    text, secret, context = CASES[kind]
    counts = Counter()
    out = redact_text(text, counts)
    assert secret not in out
    assert context in out, out
    assert sum(counts.values()) == 1, counts


@pytest.mark.parametrize("line", BENIGN)
def test_ordinary_log_text_is_left_alone(line):
    counts = Counter()
    assert redact_text(line, counts) == line
    assert not counts


@pytest.mark.parametrize(("step", "text", "expected"), [
    (redact_url_credentials, "https://u:p@h.io/x and redis://:pw@cache:6379", "https://<redacted>@h.io/x and "
     "redis://<redacted>@cache:6379"),
    (redact_bearer_tokens, "bearer abcdefgh123", "bearer <redacted>"),
    (redact_token_shapes, "AKIAABCDEFGHIJKLMNOP", REDACTED),
    (redact_secret_pairs, "password: 'two words' token=\"q\\\"x\"", "password: '<redacted>' token=\"<redacted>\""),
    (redact_secret_pairs, "url=https://h/?x=1&access_token=abc123&y=2", "url=https://h/?x=1&access_token=<redacted>&y=2"),
    (redact_private_keys, PEM, "-----BEGIN RSA PRIVATE KEY-----\n<redacted>\n-----END RSA PRIVATE KEY-----"),
])
def test_each_step_is_a_pure_function_of_one_kind(step, text, expected):
    out, count = step(text)
    assert out == expected
    assert count >= 1
    assert step(text) == (out, count)


def test_the_line_gate_lets_through_every_line_a_step_would_change():
    for text, _, _ in CASES.values():
        gated, ungated = StreamRedactor(), StreamRedactor(gate=False)
        assert gated.feed(text) == ungated.feed(text)
        assert gated.counts == ungated.counts


def test_a_private_key_split_across_blocks_is_redacted_whole():
    redactor = StreamRedactor()
    lines = f"before\n{PEM}\nafter password=x\n".encode().splitlines(keepends=True)
    out = b"".join(redactor.feed_bytes(line) for line in lines).decode()
    assert all(body not in out for body in PEM_BODY)
    assert out == ("before\n-----BEGIN RSA PRIVATE KEY-----\n<redacted>\n-----END RSA PRIVATE KEY-----\n"
                   "after password=<redacted>\n")
    assert redactor.counts == {"private_key": 1, "secret_pair": 1}


def test_text_that_starts_inside_a_key_or_never_ends_it_leaks_nothing():
    tail = "\n".join(PEM_BODY) + "\n-----END EC PRIVATE KEY-----\nafter\n"
    assert StreamRedactor(in_private_key=True).feed(tail) == "-----END EC PRIVATE KEY-----\nafter\n"
    cut = "before\n-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n"
    out = redact_text(cut)
    assert out.startswith("before\n-----BEGIN OPENSSH PRIVATE KEY-----") and PEM_BODY[0] not in out


def test_bytes_that_are_not_utf8_pass_through_unchanged():
    data = b"\xff\xfe latin1 caf\xe9 password=s3cret \xc3\x28\n"
    assert StreamRedactor().feed_bytes(data) == b"\xff\xfe latin1 caf\xe9 password=<redacted> \xc3\x28\n"


@pytest.mark.parametrize(("key", "secret"), [
    ("password", True), ("DB_PASSWORD", True), ("apiKey", True), ("X-Api-Key", True), ("HF_TOKEN", True),
    ("client_secret", True), ("Authorization", True), ("aws_secret_access_key", True), ("credentials", True),
    ("eos_token", False), ("max_new_tokens", False), ("token_id", False), ("key", False), ("PWD", False),
    ("author", False), ("monkey", False), ("password_file", False),
])
def test_secret_key_names(key, secret):
    assert is_secret_key(key) is secret


def test_environment_values_are_withheld_by_name_and_redacted_by_content():
    assert env_name_is_secret("NCCL_API_TOKEN") and env_name_is_secret("TORCH_HUB_KEY")
    assert not env_name_is_secret("NCCL_IB_PKEY") and not env_name_is_secret("CUDA_VISIBLE_DEVICES")
    counts = Counter()
    assert redact_env_value("HCCL_SECRET", "anything at all", counts) == REDACTED
    assert redact_env_value("MASTER_ADDR", "10.0.0.1", counts) == "10.0.0.1"
    assert redact_env_value("PYTORCH_STORE", "redis://u:pw@h:1", counts) == "redis://<redacted>@h:1"
    assert counts == {"secret_env": 1, "url_credentials": 1}


def test_json_is_redacted_string_by_string_and_secret_keys_withheld():
    counts = Counter()
    doc = {"password": "plain", "nested": [{"msg": "token=abc123 at https://u:p@h"}], "n": 3, "use_auth": True}
    assert redact_json(doc, counts) == {"password": REDACTED, "nested": [{"msg": "token=<redacted> at "
                                        "https://<redacted>@h"}], "n": 3, "use_auth": True}
    assert sum(counts.values()) == 3


def _all_cases_text() -> str:
    return "\n".join(f"context line {i}: {text}" for i, (text, _, _) in enumerate(CASES.values())) + "\n"


def _members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_no_planted_secret_reaches_any_member_of_the_bundle(tmp_path, monkeypatch):
    """Secrets of every kind in a log, a gzip log, the environment, a vendor tool's output, and a report: none
    of them is in any byte of the archive, while the text around them is."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "rank0.log").write_text("step 7 loss 1.234\n" + _all_cases_text()
                                    + "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (store "
                                    "postgres://admin:Hunter2Pass@db:1/x)\n"
                                    + "FeederError: login refused with "
                                    + " ".join(text for text, _, _ in CASES.values() if "\n" not in text) + "\n")
    (logs / "rank1.log.gz").write_bytes(gzip.compress(_all_cases_text().encode()))
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "cases.txt").write_text(_all_cases_text())
    (tools / "nvidia-smi").write_text(f"#!/bin/sh\necho 'GPU 00000000:3B:00.0'\ncat {tools / 'cases.txt'}\n")
    (tools / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    environ = {f"PYTORCH_CASE_{i}": text for i, (text, _, _) in enumerate(CASES.values())}
    environ |= {"NCCL_API_TOKEN": "NamedSecretValue31", "MASTER_ADDR": "10.1.2.3", "HOME_SECRET_UNRELATED": "x"}
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "report.json").write_text(json.dumps({"schema": "acceldoctor.report/1", "results": [
        {"check": "correctness.matmul", "message": _all_cases_text()}]}))

    out = tmp_path / "b.tar.gz"
    result = build_bundle(BundleRequest(output=out, logs=[logs], environ=environ, cwd=cwd, tool_timeout=10))
    members = _members(out)
    assert {"logs/logs/rank0.log", "logs/logs/rank1.log", "environment.txt", "tools/nvidia-smi-q.txt",
            "reports/report.json", "explain.json", "manifest.json"} <= set(members)
    for name, data in members.items():
        for secret in [*SECRETS, "NamedSecretValue31"]:
            assert secret[:12].encode() not in data, f"{secret} in {name}"
    for name in ("logs/logs/rank0.log", "logs/logs/rank1.log", "tools/nvidia-smi-q.txt"):
        for _, _, context in CASES.values():
            assert context.encode() in members[name], (name, context)
    assert b"step 7 loss 1.234" in members["logs/logs/rank0.log"]
    assert b"GPU 00000000:3B:00.0" in members["tools/nvidia-smi-q.txt"]
    env = members["environment.txt"].decode()
    assert "NCCL_API_TOKEN=<redacted>" in env and "MASTER_ADDR=10.1.2.3" in env and "HOME_SECRET" not in env
    assert "PYTORCH_CASE_0=store at postgres://<redacted>@db.internal:5432/jobs" in env
    explained = json.loads(members["explain.json"])
    assert any("Tried to allocate" in f["excerpt"] for f in explained["findings"])
    feeder = [g for g in explained["unrecognized"] if g["template"].startswith("FeederError: login refused with")]
    assert feeder and "<redacted>" in feeder[0]["template"], explained["unrecognized"]
    manifest = json.loads(members["manifest.json"])
    by_name = {m["name"]: m for m in manifest["members"]}
    for name in ("logs/logs/rank0.log", "environment.txt", "tools/nvidia-smi-q.txt", "reports/report.json"):
        assert sum(by_name[name]["redactions"].values()) >= len(CASES), (name, by_name[name])
    assert manifest["redactions"] == result.redactions > 0
    assert io.BytesIO(members["manifest.json"]).read().startswith(b"{")
