"""Bad input gets one clear line on stderr and exit code 2, never a traceback."""

import pytest


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("acceldoctor: error: ")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "internal error" not in lines[0]
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["check", "--device", "quantum:7"], ["unknown device 'quantum:7'", "cpu"]),
        (["check", "--select", "nosuch.*"], ["no check matches 'nosuch.*'"]),
        (["check", "--level", "extreme"], ["unknown level 'extreme'"]),
        (["check", "--inject", "gremlins"], ["unknown fault 'gremlins'"]),
        (["check", "--json", "/nonexistent-dir/r.json"], ["cannot write report", "does not exist"]),
        (["check", "--no-such-flag"], ["--no-such-flag"]),
        (["doc", "correctness.nosuch"], ["no check, fault or known error is called"]),
        (["doc"], ["Missing argument 'ID'"]),
        (["check", "--seed", "x"], ["Invalid value for '--seed'"]),
        (["check", "--param", "correctness.matmul.shapes=huge"], ["choose one of quick, standard"]),
        (["devices", "extra"], ["unexpected extra argument"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args, needles):
    assert_one_line_error(cli(*args), *needles)


def test_report_path_that_is_a_folder_is_refused(cli, tmp_path):
    assert_one_line_error(cli("check", "--json", str(tmp_path)), "is a folder")


def test_missing_torch_is_one_line(cli, tmp_path):
    # A stub package that shadows torch and fails on import, as on a machine without PyTorch.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules['torch'] = None\n")
    proc = cli("check", env={"PYTHONPATH": str(tmp_path)})
    assert_one_line_error(proc, "PyTorch is not installed")
