"""The knowledge base: valid data, broad, and every example recognized by its own entry through the fast path."""

import re
from collections import Counter

import pytest

from acceldoctor.explain import matcher
from acceldoctor.explain.knowledge import (
    CATEGORIES,
    KnowledgeDataError,
    best_match,
    load_knowledge_base,
    parse_error_file,
)
from acceldoctor.explain.matcher import Matcher, candidate_lines, has_trigger, required_literal

ENTRIES = load_knowledge_base()
MATCHER = Matcher(ENTRIES)


def test_knowledge_base_is_broad():
    assert len(ENTRIES) >= 150
    domains = Counter(e.domain for e in ENTRIES)
    for domain in ("cuda", "nccl", "xid", "pytorch", "host", "ascend_cann", "hccl", "torch_npu", "rocm", "xpu"):
        assert domains[domain] >= 5, domains
    assert len({e.category for e in ENTRIES}) >= 15


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_each_example_is_claimed_by_its_own_entry_through_the_fast_path(entry):
    for example in entry.examples:
        assert has_trigger(example), f"{example!r} holds no trigger word: the scanner would never look at it"
        assert best_match(example, ENTRIES) is entry, f"{example!r} is claimed by {best_match(example, ENTRIES).id}"
        assert MATCHER.classify(example) is entry
        for pattern in entry.patterns:  # the literal a pattern is gated on must be in every line it matches
            anchor = required_literal(pattern)
            flags = 0 if entry.case_sensitive else re.IGNORECASE
            if anchor is not None and re.search(pattern, example, flags):
                if entry.case_sensitive:
                    assert anchor in example
                else:
                    assert anchor.lower() in example.lower()


def test_entries_are_documented_with_actions_and_public_references():
    for entry in ENTRIES:
        assert entry.category in CATEGORIES
        assert entry.actions and entry.causes and entry.references
        assert len(" ".join(entry.explanation.split())) >= 30


@pytest.mark.parametrize("pattern, literal", [
    (r"CUDA out of memory\. Tried to allocate", "CUDA out of memory. Tried to allocate"),
    (r"Xid \([^)]*\): 79\b", "Xid ("),
    (r"errors? occurred", " occurred"),
    (r"foo|bar", None),
    (r"(?:abc|def)ghij", "ghij"),
])
def test_required_literal_is_conservative(pattern, literal):
    assert required_literal(pattern) == literal


def test_both_candidate_gates_pick_the_same_lines(monkeypatch):
    block = (b"INFO fine\nRuntimeError: boom\n\xff caf\xe9 error: not utf-8\n"
             + b"x" * 300 + b" Error: far into a long line " + b"y" * 300 +
             b"\nwarning: something\nall good\nNCCL WARN net\nEI0005: The arguments are inconsistent\nei0005 no\n")
    fast = candidate_lines(block, max_line=256)
    monkeypatch.setattr(matcher, "_LINE_GATE", None)
    slow = candidate_lines(block, max_line=256)
    texts = [block[a:b] for a, b in fast]
    assert [block[a:b] for a, b in slow] == texts
    assert texts[:2] == [b"RuntimeError: boom", b"\xff caf\xe9 error: not utf-8"]
    assert b"Error: far into a long line" in texts[2] and len(texts[2]) <= 256
    assert texts[3:] == [b"warning: something", b"NCCL WARN net", b"EI0005: The arguments are inconsistent"]


def test_a_broken_domain_file_is_refused_in_one_line():
    text = ("schema: acceldoctor.errors/1\ndomain: demo\nabout: a demo domain\nentries:\n"
            "  - {id: demo.x, title: Demo error, category: not_a_category, severity: error, patterns: ['x'],"
            " explanation: 'an explanation long enough to pass', causes: [c], actions: [a], references: [r],"
            " examples: [x]}\n")
    with pytest.raises(KnowledgeDataError, match="category") as info:
        parse_error_file(text, "demo.yaml")
    assert "\n" not in str(info.value)
    with pytest.raises(KnowledgeDataError, match="matches none of its patterns"):
        parse_error_file(text.replace("not_a_category", "internal_error").replace("examples: [x]", "examples: [y]"),
                         "demo.yaml")
