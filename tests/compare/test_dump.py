"""The dump format and its reader: what load_dump gives back, and the one-line errors it gives for bad input."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import acceldoctor
from acceldoctor.compare import dump as dump_module
from acceldoctor.compare.callargs import decode_call, encode_call, resolve_op
from acceldoctor.compare.dump import SCHEMA, DumpError, Record, load_dump

sys.path.insert(0, str(Path(__file__).parent))
from models import build_mlp, build_transformer_block, train_step  # noqa: E402


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """One op-level dump with tensors, made once and copied by the tests that damage it."""
    path = tmp_path_factory.mktemp("dumps") / "run"
    model, inputs = build_mlp(0)
    with acceldoctor.record(model, path, level="op", tensors=True):
        train_step(model, inputs)
    return path


@pytest.fixture
def copy_of(recorded, tmp_path) -> Path:
    return Path(shutil.copytree(recorded, tmp_path / "copy"))


def one_line_error(path) -> str:
    with pytest.raises(DumpError) as caught:
        load_dump(path)
    message = str(caught.value)
    assert "\n" not in message and message
    return message


def test_a_dump_is_three_files_and_loads(recorded):
    assert sorted(p.name for p in recorded.iterdir()) == ["meta.json", "records.jsonl", "tensors.bin"]
    dump = load_dump(recorded)
    assert dump.meta["schema"] == SCHEMA and dump.meta["level"] == "op" and dump.warnings == []
    assert [r.seq for r in dump.records] == list(range(len(dump.records)))
    first = dump.records[0]
    assert isinstance(first, Record) and isinstance(first.shape, tuple) and isinstance(first.tensor, tuple)
    assert set(first.stats) == {"min", "max", "mean", "l2", "nan", "inf", "checksum", "proj"}
    line = json.loads((recorded / "records.jsonl").read_text().splitlines()[0])
    assert {"key", "module", "op", "call", "direction", "io", "index", "shape", "dtype", "stats", "seq", "step",
            "tensor"} <= set(line)


def test_records_of_a_call_are_found_from_any_of_them(recorded):
    dump = load_dump(recorded)
    addmm = dump.by_key()["blocks.0.fc1/aten.addmm.default#0/forward/output0"]
    inputs = dump.inputs_of(addmm)
    assert [r.key.rsplit("/", 1)[1] for r in inputs] == ["input0", "input1", "input2"]
    assert dump.inputs_of(inputs[1]) == inputs
    assert dump.outputs_of(inputs[0]) == [addmm]
    call_args = dump.call_args_of(inputs[0])
    assert call_args == addmm.call_args and call_args["args"][0] == {"$input": 0}
    assert all(r.call_args is None for r in inputs), "call_args is on one record of the call: the first output"
    # An input that was the previous op's output is stored once, both records point at the same bytes.
    relu_input = dump.by_key()["blocks.0.act/aten.relu.default#0/forward/input0"]
    assert relu_input.tensor == addmm.tensor


def test_module_level_inputs_of_a_backward_call_are_its_output_gradients(tmp_path):
    model, inputs = build_transformer_block(0)
    with acceldoctor.record(model, tmp_path / "dump"):
        train_step(model, inputs)
    dump = load_dump(tmp_path / "dump")
    grad_input = dump.by_key()["mlp.fc1#0/backward/grad_input0"]
    assert [r.key for r in dump.inputs_of(grad_input)] == ["mlp.fc1#0/backward/grad_output0"]
    forward = dump.by_key()["mlp.fc1#0/forward/output0"]
    assert [r.key for r in dump.inputs_of(forward)] == ["mlp.fc1#0/forward/input0"]
    assert dump.call_args_of(forward) is None


class MakesNonFinite(nn.Module):
    def forward(self, x):
        return torch.log(x)  # log(0) = -inf, log(-1) = nan


def test_non_finite_statistics_survive_the_file(tmp_path):
    model = MakesNonFinite()
    with acceldoctor.record(model, tmp_path / "dump"):
        model(torch.tensor([0.0, -1.0, 1.0, math.inf]))
    text = (tmp_path / "dump" / "records.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    for line in text.splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    output = load_dump(tmp_path / "dump").by_key()["(model)#0/forward/output0"].stats
    assert math.isnan(output["max"]) and math.isnan(output["mean"])
    assert (output["nan"], output["inf"]) == (1, 2)
    empty = MakesNonFinite()
    with acceldoctor.record(empty, tmp_path / "empty"):
        empty(torch.empty(0, 3))
    stats = load_dump(tmp_path / "empty").by_key()["(model)#0/forward/output0"].stats
    assert stats["min"] is None and stats["mean"] is None and stats["l2"] == 0.0


def test_call_args_encode_and_decode():
    x = torch.randn(3, 4)
    indices = torch.tensor([2, 0])
    encoded, tensors = encode_call((x, [indices, None], 1.5, math.inf, torch.float16, torch.device("cpu")),
                                   {"memory_format": torch.channels_last, "layout": torch.strided, "out": None})
    text = json.dumps(encoded, default=lambda o: o.to_json())
    decoded = json.loads(text)
    assert decoded["replayable"] is True and decoded["args"][0] == {"$input": 0}
    assert decoded["args"][1][0]["$tensor"] == {"dtype": "int64", "shape": [2], "data": [2, 0]}
    assert tensors[0] is x and tensors[1] is indices
    args, kwargs = decode_call(decoded, [x])
    assert args[0] is x and torch.equal(args[1][0], indices) and args[1][1] is None
    assert args[2:] == (1.5, math.inf, torch.float16, torch.device("cpu"))
    assert kwargs == {"memory_format": torch.channels_last, "layout": torch.strided, "out": None}
    unknown, _ = encode_call((x, object()), {})
    assert unknown["replayable"] is False
    with pytest.raises(ValueError, match="not replayable"):
        decode_call(unknown, [x])
    with pytest.raises(ValueError, match="input 0"):
        decode_call(decoded, {})
    assert resolve_op("aten._softmax.default") is torch.ops.aten._softmax.default
    with pytest.raises(LookupError):
        resolve_op("aten.no_such_op.default")


def test_missing_folder_and_files(tmp_path):
    assert "no such dump folder" in one_line_error(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    assert "not a folder" in one_line_error(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert "meta.json" in one_line_error(tmp_path / "empty")


def test_meta_that_is_not_a_dump(copy_of):
    meta = copy_of / "meta.json"
    meta.write_text(json.dumps({"schema": "acceldoctor.report/1"}))
    assert "acceldoctor.report/1" in one_line_error(copy_of)
    meta.write_text("{not json")
    assert "meta.json" in one_line_error(copy_of)
    meta.write_text("[1, 2]")
    assert "not an acceldoctor dump" in one_line_error(copy_of)
    meta.write_bytes(b"\xff\xfe\x00garbage")
    assert "meta.json" in one_line_error(copy_of)


def test_missing_records_file(copy_of):
    (copy_of / "records.jsonl").unlink()
    assert "records.jsonl" in one_line_error(copy_of)


def test_binary_garbage_in_records_names_the_line(copy_of):
    records = copy_of / "records.jsonl"
    lines = records.read_bytes().splitlines(keepends=True)
    records.write_bytes(b"".join(lines[:4]) + b"\x00\xff\xfe binary \x89PNG\r\n" + b"".join(lines[5:]))
    message = one_line_error(copy_of)
    assert "records.jsonl" in message and "line 5" in message


def test_a_record_with_wrong_fields_names_the_line(copy_of):
    records = copy_of / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    broken = json.loads(lines[1])
    broken["shape"] = "big"
    records.write_text(lines[0] + json.dumps(broken) + "\n" + "".join(lines[2:]))
    assert "line 2" in one_line_error(copy_of)
    del broken["key"]
    records.write_text(lines[0] + json.dumps(broken) + "\n")
    assert "missing key" in one_line_error(copy_of)


def test_a_huge_line(copy_of, monkeypatch):
    monkeypatch.setattr(dump_module, "MAX_LINE_BYTES", 4096)
    records = copy_of / "records.jsonl"
    records.write_text(records.read_text() + '{"key": "' + "x" * 10000 + '"}\n')
    message = one_line_error(copy_of)
    assert "longer than 4096 bytes" in message and len(message) < 300


def test_truncated_tensor_store(copy_of):
    store = copy_of / "tensors.bin"
    store.write_bytes(store.read_bytes()[:1000])
    message = one_line_error(copy_of)
    assert "tensors.bin" in message and "truncated" in message
    store.unlink()
    assert "tensors.bin" in one_line_error(copy_of)


def test_half_written_last_line_of_an_unfinished_run(copy_of):
    """A killed run leaves complete=false and perhaps half a line: what was written is still readable."""
    meta = json.loads((copy_of / "meta.json").read_text())
    records = copy_of / "records.jsonl"
    whole = records.read_bytes()
    records.write_bytes(whole + b'{"key":"half')
    assert "line" in one_line_error(copy_of), "a finished run's dump has no half lines"
    (copy_of / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    dump = load_dump(copy_of)
    assert len(dump.records) == whole.count(b"\n") and len(dump.warnings) == 1
    records.write_bytes(b'{"key":"half\n' + whole)
    assert "line 1" in one_line_error(copy_of), "only the last line may be half written"
