"""`acceldoctor compare` as a user runs it: one command over a model file, two dumps, bad input."""

import json

import pytest

MODEL = "tests/compare/models.py:build_transformer_block"


def test_healthy_float32_and_bfloat16_runs_compare_equivalent(cli, tmp_path):
    proc = cli("compare", "--model", MODEL, "--dtypes", "float32,bfloat16", "--steps", "2", "--json",
               str(tmp_path / "c.json"), "--keep", str(tmp_path / "dumps"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = json.loads((tmp_path / "c.json").read_text())
    assert document["equivalent"] is True and document["first_divergence"] is None
    assert len(document["losses"]["a"]) == 2 and "equivalent" in proc.stdout
    # the kept dumps compare the same way on their own
    again = cli("compare", str(tmp_path / "dumps" / "run_a"), str(tmp_path / "dumps" / "run_b"), "--json", "-")
    assert again.returncode == 0 and json.loads(again.stdout)["equivalent"] is True


def test_an_injected_fault_is_localized_and_exits_1(cli, tmp_path):
    proc = cli("compare", "--model", MODEL, "--inject", "layernorm-eps@b", "--json", str(tmp_path / "c.json"),
               "--html", str(tmp_path / "c.html"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    first = json.loads((tmp_path / "c.json").read_text())["first_divergence"]
    assert first["key"].startswith("ln") and first["direction"] == "forward" and "divergent" in proc.stdout
    # the module, re-run in float64 on each run's inputs, says which run is wrong
    assert first["replay"]["sides"]["b"]["wrong"] and not first["replay"]["sides"]["a"]["wrong"]
    assert "run B is wrong" in first["verdict"]
    page = (tmp_path / "c.html").read_text()
    assert f"Divergent: first at {first['key']}" in page and "http://" not in page and "https://" not in page
    assert "<script" not in page


def test_an_injected_fault_that_never_fired_is_said_to_have_shown_nothing(cli, tmp_path):
    # one step of the block makes fewer GEMM calls than bitflip's default one-in-50
    proc = cli("compare", "--model", MODEL, "--steps", "1", "--inject", "bitflip@b")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bitflip injected into run B left the runs equivalent" in proc.stderr
    assert "`bitflip:1` flips one in every call" in proc.stderr
    proc = cli("compare", "--model", MODEL, "--steps", "1", "--inject", "bitflip:1@b")
    assert proc.returncode == 1 and "divergent" in proc.stdout and "left the runs equivalent" not in proc.stderr


def test_nan_hunting_names_the_call_that_made_the_first_nan(cli, tmp_path):
    proc = cli("compare", "--model", "tests/compare/models.py:build_transformer_block_with_large_logits", "--inject",
               "softmax-nan@b", "--level", "op", "--first-nonfinite", "--json", str(tmp_path / "c.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = json.loads((tmp_path / "c.json").read_text())["first_nonfinite"]
    assert found["a"] is None and found["b"]["key"].startswith("attn/") and "first NaN/Inf in run B" in proc.stdout


@pytest.mark.parametrize("args, expected", [
    (["only-one"], "give two dumps"),
    (["nowhere_a", "nowhere_b"], "nowhere_a"),
    (["--model", "no_such_module:build"], "importing no_such_module failed"),
    (["--model", MODEL, "--dtypes", "float32,int8"], "not a floating torch dtype"),
    (["--model", MODEL, "--inject", "bitflip"], "FAULT@a or FAULT@b"),
    (["--model", MODEL, "--devices", "cpu,cuda:5"], "cuda:5"),
    (["--model", MODEL, "--level", "layer"], "choose module or op"),
])
def test_bad_input_is_a_one_line_usage_error(cli, args, expected):
    proc = cli("compare", *args)
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_corrupt_dump_is_a_one_line_error(cli, tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_bytes(b"\x00\xff not json")
    proc = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_dumps_of_different_levels_are_refused(cli, tmp_path):
    for level in ("module", "op"):
        proc = cli("compare", "--model", MODEL, "--level", level, "--keep", str(tmp_path / level))
        assert proc.returncode == 0, proc.stderr
    proc = cli("compare", str(tmp_path / "module" / "run_a"), str(tmp_path / "op" / "run_b"))
    assert proc.returncode == 2 and "different levels" in proc.stderr and "Traceback" not in proc.stderr
