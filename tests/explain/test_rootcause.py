"""Across ranks, the first cause is named and the timeouts it caused are called consequences."""

from acceldoctor.explain.context import LogTime
from acceldoctor.explain.knowledge import ErrorEntry
from acceldoctor.explain.rootcause import find_root_cause
from acceldoctor.explain.scan import Finding


def _entry(name: str, category: str, severity: str = "error") -> ErrorEntry:
    return ErrorEntry(id=f"test.{name}", title=name.replace("_", " ").capitalize(), category=category,
                      severity=severity, patterns=[name], explanation="An explanation long enough to pass.",
                      causes=["a cause"], actions=["an action"], references=["a reference"], examples=[name])


TIMEOUT = _entry("collective_timeout", "collective_timeout")
ILLEGAL = _entry("illegal_access", "illegal_memory_access")
OOM = _entry("device_oom", "device_oom")
SLOW = _entry("slow_warning", "hang", severity="warning")


def _at(entry, rank, seconds=None, kind="wall"):
    time = LogTime(kind, seconds, f"t={seconds}") if seconds is not None else None
    return Finding(entry, f"rank-{rank}.log", 10, rank, time, f"{entry.id} line")


def test_the_rank_whose_error_is_not_a_timeout_is_the_cause():
    findings = [_at(TIMEOUT, 0, 700), _at(TIMEOUT, 1, 701), _at(ILLEGAL, 2, 100), _at(TIMEOUT, 3, 700)]
    root = find_root_cause(findings, {0, 1, 2, 3})
    assert root.rank == 2 and root.finding.entry is ILLEGAL
    assert "rank 2" in root.reason and "timeouts on rank(s) 0, 1, 3 followed" in root.reason


def test_the_earliest_of_several_causes_wins_when_times_compare():
    findings = [_at(OOM, 1, 300), _at(ILLEGAL, 2, 100), _at(TIMEOUT, 0, 700)]
    root = find_root_cause(findings, {0, 1, 2})
    assert root.rank == 2 and "earliest" in root.reason


def test_without_comparable_times_the_likelier_cause_wins_and_says_so():
    findings = [_at(OOM, 1, 300), _at(ILLEGAL, 2, 5.0, kind="boot")]
    root = find_root_cause(findings, {1, 2})
    assert root.rank == 2 and "cannot be compared" in root.reason


def test_a_rank_that_logged_no_timeout_is_the_suspect():
    findings = [_at(TIMEOUT, r, 700 + r) for r in (0, 1, 3)]
    root = find_root_cause(findings, {0, 1, 2, 3})
    assert root.finding is None and root.rank == 2
    assert "rank 2" in root.reason and "hung or died" in root.reason


def test_when_every_rank_timed_out_the_first_to_notice_is_named():
    findings = [_at(TIMEOUT, 0, 705), _at(TIMEOUT, 1, 702), _at(TIMEOUT, 2, 709)]
    root = find_root_cause(findings, {0, 1, 2})
    assert root.rank == 1 and "timed out first" in root.reason


def test_warnings_alone_have_no_root_cause():
    assert find_root_cause([_at(SLOW, 0, 1)], {0}) is None
    assert find_root_cause([], set()) is None
