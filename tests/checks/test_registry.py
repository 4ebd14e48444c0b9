import sys
import types

import pytest

from acceldoctor.checks import registry
from acceldoctor.checks.registry import CheckDoc, all_checks, register_check, select_checks


def test_every_check_declares_id_levels_and_documentation():
    checks = all_checks()
    assert len(checks) >= 18
    for check_id, spec in checks.items():
        assert check_id == spec.id and spec.category in registry.CATEGORY_PACKAGES
        assert set(spec.levels) <= set(registry.LEVELS)
        # a check of no level is run by `acceldoctor stress` only, which has every device at hand
        assert spec.levels or spec.category == "stability", f"{check_id} runs at no level"
        for text in (spec.doc.verifies, spec.doc.why, spec.doc.failure_means, spec.doc.remedy):
            assert len(text) > 40, f"{check_id} documents too little"


def test_selection_by_level_and_glob():
    assert "correctness.opinfo_sweep" not in {s.id for s in select_checks("quick")}
    assert "correctness.opinfo_sweep" in {s.id for s in select_checks("full")}
    assert {s.id for s in select_checks("quick", ["determinism.*"])} == {"determinism.matmul", "determinism.reduction"}
    with pytest.raises(LookupError, match="no check matches"):
        select_checks("quick", ["nosuch.*"])


def test_malformed_declarations_are_refused():
    doc = CheckDoc("v", "w", "f", "r")
    with pytest.raises(ValueError, match="lower case"):
        register_check(id="Correctness.Bad", title="t", levels=("quick",), doc=doc)
    with pytest.raises(ValueError, match="unknown levels"):
        register_check(id="correctness.bad", title="t", levels=("sometimes",), doc=doc)


def test_a_check_module_that_fails_to_import_becomes_an_erroring_check_not_a_dead_tool(monkeypatch):
    from acceldoctor.checks import correctness

    monkeypatch.setitem(sys.modules, "acceldoctor.checks.correctness.zz_broken", None)  # import raises
    monkeypatch.setattr(registry.pkgutil, "iter_modules", lambda path: [types.SimpleNamespace(name="zz_broken")]
                        if path == correctness.__path__ else [])
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry._import_check_modules()
    spec = registry._REGISTRY["correctness.zz_broken"]
    assert "could not be loaded" in spec.title
    with pytest.raises(RuntimeError, match="could not be loaded"):
        spec.run(None)
