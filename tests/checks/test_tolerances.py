"""data/tolerances/*.yaml: the schema, the loader's errors, and consistency with the check declarations."""

from pathlib import Path

import pytest

from acceldoctor.checks.docpage import check_markdown
from acceldoctor.checks.registry import all_checks
from acceldoctor.checks.tolerances import (
    ToleranceDataError,
    load_tolerance_files,
    load_tolerances,
    parse_tolerances,
    tolerance_about,
)

GOOD = """\
schema: acceldoctor.tolerances/1
about: K is the inner dimension; the magnitude is the product of |A| and |B|.
tolerances:
  {op}:
    output: 1.0
    accumulation: 2.0
    growth: sqrt
    magnitude: sum_k |A_ik| |B_kj|
    why: The output is rounded once; the sum grows like sqrt(K).
"""


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_every_shipped_file_validates_and_documents_itself():
    files = load_tolerance_files()
    assert files, "no files in data/tolerances/"
    for check_id, parsed in files.items():
        assert parsed.about, f"data/tolerances/{check_id}.yaml has no `about` (what K and the magnitude mean)"
        for op, tol in parsed.tolerances.items():
            # Checks pass `magnitude=` to Verdict.compare for most ops; the data must say what it is.
            assert tol.magnitude, f"{op} in data/tolerances/{check_id}.yaml does not document its magnitude"
    assert set(load_tolerances()) == {op for parsed in files.values() for op in parsed.tolerances}


def test_files_are_named_after_checks_and_declare_what_the_checks_use():
    checks = all_checks()
    files = load_tolerance_files()
    tolerances = load_tolerances()
    for check_id, parsed in files.items():
        assert check_id in checks, f"data/tolerances/{check_id}.yaml is named after no registered check"
        unused = set(parsed.tolerances) - set(checks[check_id].tolerances)
        assert not unused, f"{check_id} does not declare tolerances=({', '.join(sorted(unused))}) of its file"
    for spec in checks.values():
        missing = [op for op in spec.tolerances if op not in tolerances]
        assert not missing, f"{spec.id} declares tolerances with no entry in data/tolerances/: {missing}"


def test_check_pages_show_about_magnitude_and_why():
    for spec in all_checks().values():
        if not spec.tolerances:
            continue
        page = check_markdown(spec)
        about = tolerance_about(spec.id)
        if about:
            assert about.strip() in page
        for op in spec.tolerances:
            tol = load_tolerances()[op]
            assert f"### `{op}`" in page and tol.formula() in page and tol.why.strip() in page
            assert f"**Magnitude:** {tol.magnitude.strip()}" in page


def test_loader_reads_a_given_folder(tmp_path):
    _write(tmp_path, "correctness.a.yaml", GOOD.format(op="a_op"))
    _write(tmp_path, "README.txt", "not a tolerance file")
    files = load_tolerance_files(tmp_path)
    assert list(files) == ["correctness.a"]
    assert files["correctness.a"].about.startswith("K is the inner dimension")
    tol = load_tolerances(tmp_path)["a_op"]
    assert tol.magnitude == "sum_k |A_ik| |B_kj|"
    assert tol.formula() == "|actual - golden| <= eps * (1 * |golden| + 2 * sqrt(K) * magnitude) + tiny"


def test_optional_fields_may_be_left_out():
    text = GOOD.format(op="a_op").replace("about: K is the inner dimension; the magnitude is the product of "
                                          "|A| and |B|.\n", "").replace("    magnitude: sum_k |A_ik| |B_kj|\n", "")
    parsed = parse_tolerances(text)
    assert parsed.about is None and parsed.tolerances["a_op"].magnitude is None


@pytest.mark.parametrize("broken, where", [
    (GOOD.format(op="a_op").replace("    why:", "    magnitud: typo\n    why:"), "magnitud"),
    (GOOD.format(op="a_op").replace("about:", "abut:"), "abut"),
    (GOOD.format(op="a_op").replace("growth: sqrt", "growth: cubic"), "growth"),
    (GOOD.format(op="a_op").replace("output: 1.0", "output: -1.0"), "output"),
    (GOOD.format(op="a_op").replace("acceldoctor.tolerances/1", "acceldoctor.tolerances/2"), "schema"),
    ("tolerances: [\n", "while parsing"),
])
def test_an_invalid_file_is_rejected_with_its_name(tmp_path, broken, where):
    _write(tmp_path, "correctness.a.yaml", GOOD.format(op="a_op"))
    _write(tmp_path, "correctness.b.yaml", broken.replace("a_op", "b_op"))
    with pytest.raises(ToleranceDataError) as info:
        load_tolerances(tmp_path)
    message = str(info.value)
    assert "correctness.b.yaml is invalid" in message and where in message
    assert "correctness.a.yaml" not in message


def test_an_op_defined_in_two_files_is_rejected_naming_both(tmp_path):
    _write(tmp_path, "correctness.a.yaml", GOOD.format(op="shared"))
    _write(tmp_path, "correctness.b.yaml", GOOD.format(op="shared"))
    with pytest.raises(ToleranceDataError, match=r"'shared' is defined in both .*correctness\.a\.yaml and "
                                                  r".*correctness\.b\.yaml"):
        load_tolerance_files(tmp_path)


def test_about_of_a_check_without_a_file_is_none():
    assert tolerance_about("environment.copy_integrity") is None
    assert tolerance_about("correctness.matmul")
