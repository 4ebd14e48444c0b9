"""data/spec_sheets.yaml and its loader: validation, lookup by device name, efficiency, the docs table."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from acceldoctor.baseline.spec_sheets import (
    DTYPES,
    SpecSheetDataError,
    load_spec_sheets,
    lookup,
    spec_sheets_markdown,
)

REQUIRED_MODELS = [
    "NVIDIA H100 SXM", "NVIDIA H100 PCIe", "NVIDIA H200 SXM", "NVIDIA A100 SXM 80GB", "NVIDIA A100 PCIe 80GB",
    "NVIDIA L40S", "NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3090", "AMD Instinct MI250X",
    "AMD Instinct MI300X", "Huawei Ascend 910B", "Intel Gaudi 2", "Intel Gaudi 3",
]


def _write(tmp_path: Path, models_yaml: str, schema: str = "acceldoctor.spec_sheets/1") -> Path:
    path = tmp_path / "spec_sheets.yaml"
    path.write_text(f"schema: {schema}\nmodels:\n" + textwrap.indent(textwrap.dedent(models_yaml), "  "))
    return path


GOOD_A = """\
- model: Alpha One
  vendor: Acme
  patterns: ['\\bAlpha 1\\b']
  examples: [Acme Alpha 1]
  peak_tflops: {bfloat16: 100}
  memory_bandwidth_gbs: 1000
  host_link_gbs: 32
  source: Acme Alpha datasheet
"""


def test_shipped_file_validates_and_covers_the_required_models():
    sheets = load_spec_sheets()
    names = [s.model for s in sheets]
    assert len(names) == len(set(names))
    for model in REQUIRED_MODELS:
        assert model in names
    for sheet in sheets:
        assert sheet.source.strip()
        assert set(sheet.peak_tflops) <= set(DTYPES)
        # A model with a figure left out says why.
        if not sheet.peak_tflops or sheet.memory_bandwidth_gbs is None or sheet.host_link_gbs is None:
            assert sheet.note, sheet.model


def test_loading_is_cached():
    assert load_spec_sheets() is load_spec_sheets()


@pytest.mark.parametrize("sheet", load_spec_sheets(), ids=lambda s: s.model)
def test_each_example_looks_up_to_its_model(sheet):
    for example in sheet.examples:
        assert lookup(example) is sheet
        assert lookup(example.upper()) is sheet
        assert lookup(example.lower()) is sheet


@pytest.mark.parametrize("name", [
    "cpu", "", "   ", "mps", "Intel(R) Data Center GPU Max 1550", "NVIDIA H200 NVL", "NVIDIA GeForce RTX 3090 Ti",
    "NVIDIA GeForce RTX 4090 D", "NVIDIA L40", "AMD Instinct MI300A",
])
def test_cpu_and_unknown_names_give_none(name):
    assert lookup(name) is None


def test_lookup_examples_of_real_device_names():
    assert lookup("NVIDIA H100 80GB HBM3").model == "NVIDIA H100 SXM"
    assert lookup("NVIDIA H200").model == "NVIDIA H200 SXM"
    assert lookup("AMD Instinct MI300X").model == "AMD Instinct MI300X"
    assert lookup("Ascend910B2").model == "Huawei Ascend 910B"
    assert lookup("GAUDI2").model == "Intel Gaudi 2"


def test_efficiency_math():
    h100 = lookup("NVIDIA H100 PCIe")
    assert h100.efficiency("tflops", "bfloat16", 378.25) == pytest.approx(0.5)
    assert h100.efficiency("tflops", "torch.bfloat16", 378.25) == pytest.approx(0.5)
    assert h100.efficiency("tflops", "bf16", 378.25) == pytest.approx(0.5)
    assert h100.efficiency("tflops", "float32", 51) == pytest.approx(1.0)
    assert h100.efficiency("tflops", "int8", 756.5) == pytest.approx(0.5)
    assert h100.efficiency("memory_bandwidth", None, 1500) == pytest.approx(0.75)
    assert h100.efficiency("host_link", None, 48) == pytest.approx(0.75)
    # Unknown figures give None, never a made-up ratio.
    assert h100.efficiency("tflops", "float64", 10) is None
    assert h100.efficiency("tflops", None, 10) is None
    assert lookup("NVIDIA A100-SXM4-80GB").efficiency("tflops", "fp8", 10) is None
    ascend = lookup("Ascend910B1")
    assert ascend.efficiency("tflops", "float16", 100) is None
    assert ascend.efficiency("memory_bandwidth", None, 100) is None
    with pytest.raises(ValueError, match="metric kind"):
        h100.efficiency("latency", None, 1)


def test_custom_path(tmp_path):
    path = _write(tmp_path, GOOD_A)
    sheets = load_spec_sheets(path)
    assert [s.model for s in sheets] == ["Alpha One"]
    assert lookup("ACME ALPHA 1", path=path).model == "Alpha One"
    assert lookup("NVIDIA H100 80GB HBM3", path=path) is None


def test_unknown_key_is_rejected_naming_the_model(tmp_path):
    path = _write(tmp_path, GOOD_A + "  peak_tflops_sparse: {bfloat16: 200}\n")
    with pytest.raises(SpecSheetDataError, match="peak_tflops_sparse") as info:
        load_spec_sheets(path)
    assert "Alpha One" in str(info.value)


def test_unknown_dtype_is_rejected(tmp_path):
    path = _write(tmp_path, GOOD_A.replace("{bfloat16: 100}", "{float64: 100}"))
    with pytest.raises(SpecSheetDataError, match="Alpha One"):
        load_spec_sheets(path)


def test_unknown_top_level_key_and_schema_are_rejected(tmp_path):
    path = _write(tmp_path, GOOD_A)
    path.write_text(path.read_text() + "extra: 1\n")
    with pytest.raises(SpecSheetDataError, match="extra"):
        load_spec_sheets(path)
    with pytest.raises(SpecSheetDataError, match="schema"):
        load_spec_sheets(_write(tmp_path, GOOD_A, schema="acceldoctor.spec_sheets/2"))


def test_bad_regex_is_rejected_naming_the_model(tmp_path):
    path = _write(tmp_path, GOOD_A.replace("'\\bAlpha 1\\b'", "'Alpha (1'"))
    with pytest.raises(SpecSheetDataError, match="Alpha One.*does not compile"):
        load_spec_sheets(path)


def test_example_not_matching_its_own_pattern_is_rejected(tmp_path):
    path = _write(tmp_path, GOOD_A.replace("[Acme Alpha 1]", "[Acme Beta 1]"))
    with pytest.raises(SpecSheetDataError, match="Alpha One.*Acme Beta 1"):
        load_spec_sheets(path)


def test_overlapping_patterns_are_rejected_naming_the_models(tmp_path):
    other = GOOD_A.replace("Alpha One", "Alpha Pro").replace("'\\bAlpha 1\\b'", "'Alpha'").replace(
        "[Acme Alpha 1]", "[Acme Alpha Pro]")
    path = _write(tmp_path, GOOD_A + other)
    with pytest.raises(SpecSheetDataError) as info:
        load_spec_sheets(path)
    message = str(info.value)
    assert "'Alpha One'" in message and "'Alpha Pro'" in message and "Acme Alpha 1" in message


def test_duplicate_model_is_rejected(tmp_path):
    with pytest.raises(SpecSheetDataError, match="Alpha One.*twice"):
        load_spec_sheets(_write(tmp_path, GOOD_A + GOOD_A.replace("Alpha 1", "Alpha 2")))


def test_non_positive_figure_is_rejected(tmp_path):
    with pytest.raises(SpecSheetDataError, match="positive"):
        load_spec_sheets(_write(tmp_path, GOOD_A.replace("{bfloat16: 100}", "{bfloat16: 0}")))


def test_markdown_table_has_every_model_and_source():
    text = spec_sheets_markdown()
    header = next(line for line in text.splitlines() if line.startswith("| Model"))
    columns = header.count("|")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line != header]
    assert len(rows) == len(load_spec_sheets())
    assert all(row.count("|") == columns for row in rows)
    for sheet in load_spec_sheets():
        assert f"| {sheet.model} |" in text
        assert sheet.source in text
    assert "| 989.5 |" in text
