"""`acceldoctor list` and `acceldoctor doc` show every check and fault with its documentation."""

from acceldoctor.checks.registry import all_checks
from acceldoctor.faults.catalog import FAULTS


def test_list_names_every_check(cli):
    proc = cli("list")
    assert proc.returncode == 0, proc.stderr
    for check_id in all_checks():
        assert check_id in proc.stdout


def test_list_faults_names_every_fault_and_the_check_that_catches_it(cli):
    proc = cli("list", "--faults")
    assert proc.returncode == 0, proc.stderr
    for fault in FAULTS.values():
        assert fault.name in proc.stdout and fault.caught_by in proc.stdout


def test_doc_explains_a_check_with_its_tolerance_and_self_test(cli):
    proc = cli("doc", "correctness.matmul")
    assert proc.returncode == 0, proc.stderr
    for heading in ("What it verifies", "Why it matters", "What a failure means", "What to do", "Tolerances",
                    "--inject matmul-wrong-fp16"):
        assert heading in proc.stdout


def test_doc_explains_a_fault(cli):
    proc = cli("doc", "softmax-nan")
    assert proc.returncode == 0, proc.stderr
    assert "correctness.softmax" in proc.stdout
