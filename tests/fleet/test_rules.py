"""The diagnose rules file is data with a schema: the packaged one validates, broken ones are refused in one line."""

import pytest

from acceldoctor.baseline.rules import BaselineDataError
from acceldoctor.fleet.rules import load_diagnose_rules

GOOD_RULE = """
  - id: slow
    kind: outlier
    severity: fail
    mad_multiple: 3.5
    min_change: 0.1
    min_group: 3
    description: a device much slower than its peers
"""


def test_packaged_rules_cover_every_kind():
    rules = load_diagnose_rules()
    assert {r.kind for r in rules.rules} == {"status", "threshold", "baseline", "outlier"}
    assert "noise" in rules.about.lower() or "measured" in rules.about.lower()


@pytest.mark.parametrize("text, expected", [
    ("schema: acceldoctor.diagnose_rules/1\nabout: the noise we measured here\nrules:" + GOOD_RULE * 2,
     "listed twice: slow"),
    ("schema: acceldoctor.diagnose_rules/1\nabout: the noise we measured here\nrules:"
     + GOOD_RULE.replace("outlier", "magic"), "rules.0"),
    ("schema: acceldoctor.diagnose_rules/1\nabout: the noise we measured here\nrules:\n  - {id: t, kind: threshold, "
     "severity: warn, check: 'performance.*', metric: efficiency, below: 0.5, above: 2, description: both bounds "
     "are given here}", "exactly one of `below` and `above`"),
    ("schema: acceldoctor.baseline_rules/1\n", "not a diagnose rules file"),
    ("rules: [unclosed", "not valid YAML"),
])
def test_broken_rules_files_are_refused_in_one_line(tmp_path, text, expected):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(BaselineDataError, match=expected) as info:
        load_diagnose_rules(path)
    assert "\n" not in str(info.value)


def test_missing_or_binary_rules_file(tmp_path):
    with pytest.raises(BaselineDataError, match="does not exist"):
        load_diagnose_rules(tmp_path / "none.yaml")
    binary = tmp_path / "rules.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BaselineDataError, match="cannot read"):
        load_diagnose_rules(binary)
