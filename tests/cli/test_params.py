import pytest

from acceldoctor.checks.registry import all_checks
from acceldoctor.cli.errors import UsageError
from acceldoctor.cli.params import parse_param_overrides


def test_overrides_are_typed_like_the_declared_default():
    overrides = parse_param_overrides(
        ["correctness.opinfo_sweep.ops=add,mul", "correctness.opinfo_sweep.max_samples=2",
         "correctness.opinfo_sweep.time_budget_s=30", "environment.copy_integrity.sizes=[1, 7]"], all_checks())
    assert overrides == {
        "correctness.opinfo_sweep": {"ops": "add,mul", "max_samples": 2, "time_budget_s": 30},
        "environment.copy_integrity": {"sizes": [1, 7]},
    }
    assert parse_param_overrides(["environment.memory_pattern.size_mib=auto"], all_checks()) == {
        "environment.memory_pattern": {"size_mib": "auto"}}


@pytest.mark.parametrize(("item", "message"), [
    ("correctness.matmul.nope=1", "has no parameter 'nope' (it has: shapes)"),
    ("correctness.nosuch.x=1", "no check is called 'correctness.nosuch'"),
    ("correctness.opinfo_sweep.max_samples=many", "expected a int like 8"),
    ("environment.copy_integrity.sizes=7", "expected a list"),
    ("shapes", "takes CHECK.NAME=VALUE"),
    ("correctness.matmul.shapes=huge", "choose one of quick, standard"),
    ("environment.memory_alloc.fraction=5", "must be at most 0.95"),
    ("environment.memory_pattern.size_mib=lots", "or one of auto"),
])
def test_bad_overrides_are_usage_errors(item, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_param_overrides([item], all_checks())


def test_override_reaches_the_check(cli, tmp_path):
    import json

    path = tmp_path / "r.json"
    proc = cli("check", "--select", "determinism.matmul", "--param", "determinism.matmul.repetitions=3",
               "--json", str(path))
    assert proc.returncode == 0, proc.stderr
    metrics = {m["name"]: m["value"] for m in json.loads(path.read_text())["results"][0]["metrics"]}
    assert metrics["repetitions"] == 3
