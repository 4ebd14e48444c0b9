"""Unknown error lines become a few templates with counts, not thousands of lines."""

from acceldoctor.explain.unrecognized import PIPELINE, UnrecognizedGroups, looks_like_error, normalize


def test_lines_differing_in_variable_parts_share_one_template():
    groups = UnrecognizedGroups()
    for i in range(5000):
        groups.add(f"[rank{i % 8}]:[E1125 10:42:{i % 60:02d}.123 x.cpp:{i}] FooError: buffer 0x{i:08x} at "
                   f"/tmp/job{i}/data.bin of size {i * 4} from 10.0.{i % 250}.3:29500 failed", "a.log", i + 1)
    groups.add("BarError: something else entirely", "b.log", 7)
    top = groups.top()
    assert [t.count for t in top] == [5000, 1]
    assert top[0].template == ("[rank<NUM>]:[<TIME> x.cpp:<NUM>] FooError: buffer <HEX> at <PATH> of size <NUM> "
                               "from <IP> failed")
    assert len(top[0].examples) == 3 and (top[0].first_file, top[0].first_line) == ("a.log", 1)


def test_memory_stays_bounded_on_endless_unique_errors():
    groups = UnrecognizedGroups(max_templates=10)
    for i in range(100):
        groups.add(f"Error: unique message {chr(65 + i % 26)}{chr(65 + i // 26)}", "a.log", i)
    assert len(groups.templates) == 10 and groups.dropped == 90


def test_each_step_replaces_only_its_own_kind():
    line = "2024-05-10T11:22:33 RuntimeError: 'foo' failed at 0xdeadbeef on 10.0.0.3 after 12 tries"
    changed = {step.__name__: step(line) for step in PIPELINE}
    assert changed["replace_ips"] == line.replace("10.0.0.3", "<IP>")
    assert changed["replace_hex"] == line.replace("0xdeadbeef", "<HEX>")
    assert normalize(line) == "<TIME> RuntimeError: <STR> failed at <HEX> on <IP> after <NUM> tries"


def test_what_looks_like_an_error():
    for line in ["RuntimeError: boom", "ERROR: disk", "[rank0]:[E1125 10:42:31.1 x.cpp:1] op failed",
                 "EE9999: Inner Error", "task FAILED", "ERR01002 OPS invalid", "EI0005: The arguments differ"]:
        assert looks_like_error(line), line
    for line in ["INFO step 10 loss 2.3", "warning: deprecated", "no errors found"]:
        assert not looks_like_error(line), line
