"""Which knowledge-base entry a log line is, fast enough for gigabytes of logs.

Two cheap gates come before the regular expressions:
1. Candidate lines: only lines holding one of a short list of trigger words (TRIGGERS, matched ignoring case) are
   looked at. With google-re2 installed (a dependency) one DFA pass over a block returns those lines at hundreds of
   MB/s; without it, one `bytes.find` pass per trigger does the same, several times slower. A test proves every
   example of every entry, and every error-looking line the unrecognized-error grouping keeps, holds a trigger.
2. Each pattern's longest literal run (`required_literal`) must appear in a candidate line before the pattern is
   tried; most patterns are thereby skipped with a substring test.
The winner among matching entries follows knowledge.best_match: primary before secondary, the longest match, then
file order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from acceldoctor.explain.knowledge import ErrorEntry

TRIGGERS: tuple[bytes, ...] = (
    b"err", b"fail", b"fatal", b"exception", b"traceback", b"timeout", b"timed out", b"times out", b"abort",
    b"kill", b"xid", b"memory", b"oom", b"nan", b"assert", b"fault", b"refused", b"denied", b"cannot", b"can't",
    b"unable", b"not found", b"no such", b"invalid", b"illegal", b"panic", b"warn", b"lost", b"stuck", b"hung",
    b"blocked for", b"support", b"not implemented", b"mismatch", b"too old", b"insufficient", b"no space",
    b"too many", b"in use", b"overflow", b"unavailable", b"busy", b"reset", b"off the bus", b"retry", b"exceed",
    b"corrupt", b"incompatible", b"machine check", b"signal", b"exit code", b"no kernel image", b"fall back",
    b"fallback", b"lockup", b"stall", b"launch_blocking", b"status: down", b"link down", b"process down",
    b"exitcode", b"limit",
)
# Vendor error codes that carry no word a person would search for (CANN's `EI0005: The arguments ... are
# inconsistent`): matched case-sensitively, as a regular expression.
CODE_SHAPES: tuple[bytes, ...] = (rb"\bE[A-Z]\d{4}\b",)
_CODE_SHAPE_RE = re.compile(b"|".join(CODE_SHAPES))

try:
    import re2
except ImportError:  # the slower pure-Python gate below serves
    re2 = None


def _line_gate():
    if re2 is None:
        return None
    options = re2.Options()
    options.case_sensitive = False
    options.encoding = re2.Options.Encoding.LATIN1  # a log is bytes: one stray non-UTF-8 byte must not hide a line
    # A whole line (without its break) that holds a trigger somewhere: RE2 finds these in one linear pass.
    alternatives = b"|".join([re2.escape(t) for t in TRIGGERS] + [b"(?-i:" + shape + b")" for shape in CODE_SHAPES])
    return re2.compile(b"(?m)^[^\n]*(?:" + alternatives + b")[^\n]*", options)


_LINE_GATE = _line_gate()

_META = set(".^$*+?{}[]()|\\")
_ZERO_WIDTH_OR_CLASS_ESCAPES = set("dDwWsSbBAZzGnrtfvx0123456789uUN")


def _skip_group(pattern: str, i: int) -> int:
    """Index just past the group opening at `i` (skipping nested groups, classes and escapes)."""
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _skip_class(pattern, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _skip_class(pattern: str, i: int) -> int:
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def required_literal(pattern: str, min_length: int = 3) -> str | None:
    """The longest run of plain characters that every match of `pattern` must contain, or None.

    Conservative: groups, classes, escapes that are not plain punctuation and anything a quantifier makes optional
    end a run; a top-level alternation means no single literal is required.
    """
    runs: list[str] = []
    run: list[str] = []
    i = 0

    def end_run() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    while i < len(pattern):
        c = pattern[i]
        if c == "|":
            return None
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in _ZERO_WIDTH_OR_CLASS_ESCAPES or nxt.isalnum():
                end_run()
            else:
                run.append(nxt)
            i += 2
            continue
        if c == "(":
            end_run()
            i = _skip_group(pattern, i)
            continue
        if c == "[":
            end_run()
            i = _skip_class(pattern, i)
            continue
        if c in "*?+{":
            if run:
                run.pop()  # the quantified character may be absent or repeated
            end_run()
            if c == "{":
                close = pattern.find("}", i)
                i = close + 1 if close != -1 else i + 1
            else:
                i += 1
            if i < len(pattern) and pattern[i] in "?+":  # lazy or possessive quantifier
                i += 1
            continue
        if c in _META:
            end_run()
            i += 1
            continue
        run.append(c)
        i += 1
    end_run()
    best = max(runs, key=len, default="")
    return best if len(best) >= min_length else None


@dataclass(frozen=True)
class _Pattern:
    order: int
    entry: ErrorEntry
    regex: re.Pattern[str]
    anchor: str | None  # lower case unless the entry is case-sensitive
    case_sensitive: bool


class Matcher:
    """Classifies candidate lines. With RE2, two pattern sets (case-insensitive and case-sensitive) name in one pass
    over a line every pattern that matches it; Python's `re` then measures only those for the longest match.
    Without RE2, or for a pattern RE2 cannot compile, each pattern is tried behind its required literal."""

    def __init__(self, entries: tuple[ErrorEntry, ...]):
        self.entries = entries
        self._patterns: list[_Pattern] = []
        for order, entry in enumerate(entries):
            flags = 0 if entry.case_sensitive else re.IGNORECASE
            for pattern in entry.patterns:
                anchor = required_literal(pattern)
                if anchor is not None and not entry.case_sensitive:
                    anchor = anchor.lower()
                self._patterns.append(_Pattern(order, entry, re.compile(pattern, flags), anchor,
                                               entry.case_sensitive))
        self._sets, self._unset = self._build_sets()

    def _build_sets(self):
        if re2 is None:
            return [], list(self._patterns)
        unset: list[_Pattern] = []
        sets = []
        for case_sensitive in (False, True):
            options = re2.Options()
            options.case_sensitive = case_sensitive
            members: list[_Pattern] = []
            pattern_set = re2.Set.SearchSet(options)
            for p in self._patterns:
                if p.case_sensitive != case_sensitive:
                    continue
                if not _re2_compatible(p.regex.pattern):
                    unset.append(p)
                    continue
                pattern_set.Add(p.regex.pattern)
                members.append(p)
            if members:
                pattern_set.Compile()
                sets.append((pattern_set, members))
        return sets, unset

    def classify(self, line: str) -> ErrorEntry | None:
        """The entry that claims `line` (as knowledge.best_match decides), or None."""
        lower = line.lower()
        best: tuple[bool, int, int] | None = None
        chosen = None
        for p in self._candidates(line, lower):
            found = p.regex.search(line)
            if found is None:
                continue
            rank = (not p.entry.secondary, found.end() - found.start(), -p.order)
            if best is None or rank > best:
                best, chosen = rank, p.entry
        return chosen

    def _candidates(self, line: str, lower: str):
        for pattern_set, members in self._sets:
            for index in pattern_set.Match(line) or ():  # None when nothing matches
                yield members[index]
        for p in self._unset:
            if p.anchor is None or p.anchor in (line if p.case_sensitive else lower):
                yield p


# What Python's `re` accepts and RE2 does not: such a pattern is checked the slow way, never silently dropped.
_PYTHON_ONLY = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=|\(\?\(|[*+?}][+]")


def _re2_compatible(pattern: str) -> bool:
    return _PYTHON_ONLY.search(pattern) is None


def has_trigger(line: str) -> bool:
    raw = line.encode("utf-8", errors="replace")
    lower = raw.lower()
    return any(t in lower for t in TRIGGERS) or _CODE_SHAPE_RE.search(raw) is not None


def candidate_lines(block: bytes, max_line: int) -> list[tuple[int, int]]:
    """(start, end) of every line in `block` that holds a trigger, in order; a line longer than `max_line` is
    represented by at most `max_line` bytes around its first trigger."""
    if _LINE_GATE is not None:
        spans = []
        for found in _LINE_GATE.finditer(block):
            start, end = found.span()
            if end - start > max_line:
                start, end = _window_around_trigger(block, start, end, max_line)
            spans.append((start, end))
        return spans
    return _candidate_lines_by_find(block, max_line)


def _window_around_trigger(block: bytes, start: int, end: int, max_line: int) -> tuple[int, int]:
    line = block[start:end]
    lower = line.lower()
    shape = _CODE_SHAPE_RE.search(line)
    found = [i for i in (lower.find(t) for t in TRIGGERS) if i != -1] + ([shape.start()] if shape else [])
    first = min(found, default=0)
    begin = max(start, start + first - max_line // 2)
    return begin, min(end, begin + max_line)


def _candidate_lines_by_find(block: bytes, max_line: int) -> list[tuple[int, int]]:
    lower = block.lower()
    hits: list[int] = []
    for trigger in TRIGGERS:
        at = lower.find(trigger)
        while at != -1:
            hits.append(at)
            at = lower.find(trigger, at + 1)
    hits.extend(found.start() for found in _CODE_SHAPE_RE.finditer(block))
    hits.sort()
    spans: list[tuple[int, int]] = []
    next_line_start = 0
    for offset in hits:
        if offset < next_line_start:
            continue  # another trigger in a line already taken
        start = block.rfind(b"\n", max(0, offset - max_line // 2), offset) + 1
        if start == 0 and offset >= max_line // 2:
            start = offset - max_line // 2
        end = block.find(b"\n", offset, start + max_line)
        end = min(len(block), start + max_line) if end == -1 else end
        next_line_start = block.find(b"\n", offset) + 1 or len(block)
        spans.append((start, end))
    return spans
