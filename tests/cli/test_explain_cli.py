"""`acceldoctor explain` as a user runs it: logs of a real multi-rank job, bad input, listing and docs."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from acceldoctor.interconnect.launch import free_port

JOB = Path(__file__).resolve().parents[1] / "explain" / "multirank_job.py"


def _run_job(mode: str, folder: Path) -> None:
    subprocess.run([sys.executable, str(JOB), mode, str(folder), str(free_port())], check=True, timeout=120,
                   capture_output=True)


def test_the_rank_that_failed_first_is_named_as_root_cause(cli, tmp_path):
    logs = tmp_path / "logs"
    _run_job("oom", logs)
    proc = cli("explain", str(logs), "--json", "-")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["root_cause"]["rank"] == 1, result["root_cause"]
    assert result["root_cause"]["finding"]["category"] == "host_resource_exhausted"
    assert "rank 1" in result["root_cause"]["reason"] and "0, 2" in result["root_cause"]["reason"]
    timeouts = {f["rank"] for f in result["findings"] if f["id"] == "gloo.operation_timeout"}
    assert timeouts == {0, 2}

    text = cli("explain", str(logs))
    assert text.returncode == 1
    assert "Root cause:" in text.stdout and "rank 1" in text.stdout


def test_a_rank_that_hung_without_a_word_is_the_suspect(cli, tmp_path):
    logs = tmp_path / "logs"
    _run_job("silent", logs)
    result = json.loads(cli("explain", str(logs), "--json", "-").stdout)
    assert result["root_cause"]["rank"] == 1 and result["root_cause"]["finding"] is None
    assert "logged no timeout" in result["root_cause"]["reason"]


def test_a_clean_log_exits_0_and_unknown_errors_are_grouped(cli, tmp_path):
    clean = tmp_path / "clean.log"
    clean.write_text("INFO step 1 loss 2.3\nINFO step 2 loss 2.2\n")
    proc = cli("explain", str(clean))
    assert proc.returncode == 0 and "Nothing wrong found" in proc.stdout
    odd = tmp_path / "odd.log.gz"
    odd.write_bytes(gzip.compress("".join(f"FeederError: queue {i} stalled for {i % 7}s\n" for i in range(500))
                                  .encode()))
    result = json.loads(cli("explain", str(odd), "--json", "-").stdout)
    assert result["findings"] == [] and result["exit_code"] == 1
    [template] = result["unrecognized"]
    assert template["count"] == 500 and template["template"] == "FeederError: queue <NUM> stalled for <NUM>s"


def test_bad_files_are_named_and_the_rest_still_scanned(cli, tmp_path):
    good = tmp_path / "good.log"
    good.write_text("RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:598] Read error "
                    "[10.0.0.12]:46211: Connection reset by peer\n")
    binary = tmp_path / "core.bin"
    binary.write_bytes(b"\x7fELF\x00\x00\x00" * 100)
    proc = cli("explain", str(good), str(binary), str(tmp_path / "missing.log"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gloo.connection_reset_by_peer" in proc.stdout
    assert "core.bin: binary file" in proc.stdout and "missing.log: no such file" in proc.stdout


@pytest.mark.parametrize("case", ["binary_only", "empty_folder", "no_args"])
def test_nothing_readable_is_one_line_exit_2(cli, tmp_path, case):
    args = {"binary_only": [str(tmp_path / "a.bin")], "empty_folder": [str(tmp_path / "empty")], "no_args": []}[case]
    (tmp_path / "a.bin").write_bytes(b"\x00\x01\x02" * 10)
    (tmp_path / "empty").mkdir()
    proc = cli("explain", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_list_and_doc_show_the_knowledge_base(cli):
    listed = cli("explain", "--list")
    assert listed.returncode == 0 and "gloo.operation_timeout" in listed.stdout
    doc = cli("doc", "gloo.operation_timeout")
    assert doc.returncode == 0 and "What to do" in doc.stdout and "collective_timeout" in doc.stdout
    assert cli("doc", "gloo.nonsense").returncode == 2


def test_findings_before_the_damage_in_a_cut_short_gzip_are_kept(cli, tmp_path):
    log = tmp_path / "rank-0.log.gz"
    text = "RuntimeError: CUDA error: an illegal memory access was encountered\n" + "INFO step\n" * 20000
    log.write_bytes(gzip.compress(text.encode())[:-20])
    proc = cli("explain", str(log), "--json", "-")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert [f["id"] for f in result["findings"]] == ["cuda.illegal_address"]
    assert result["partly_read"] and "truncated compressed data" in result["partly_read"][0]
