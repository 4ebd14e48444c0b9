"""Scan log files: every line a knowledge-base entry knows becomes a finding; error-looking lines no entry knows are
grouped into templates. One pass per file, in blocks, with the cheap gates of matcher.py in front of the patterns."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from acceldoctor.explain.context import RANK_TAG, LogTime, rank_of_file, rank_of_line, time_of_line
from acceldoctor.explain.knowledge import ErrorEntry
from acceldoctor.explain.matcher import Matcher, candidate_lines
from acceldoctor.explain.reader import MAX_LINE_BYTES, LogReadError, decode_line, read_blocks
from acceldoctor.explain.unrecognized import UnrecognizedGroups, looks_like_error

_RANK_PREFIX = re.compile(RANK_TAG.encode("ascii"), re.IGNORECASE)
EXCERPT_CHARS = 500


@dataclass
class Finding:
    entry: ErrorEntry
    file: str
    line: int
    rank: int | None
    time: LogTime | None
    excerpt: str
    count: int = 1


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    unrecognized: UnrecognizedGroups = field(default_factory=UnrecognizedGroups)
    files: list[str] = field(default_factory=list)  # files scanned
    unreadable: list[str] = field(default_factory=list)  # one line per file that could not be scanned
    partly_read: list[str] = field(default_factory=list)  # one line per file scanned up to a problem
    bytes_scanned: int = 0
    ranks_seen: set[int] = field(default_factory=set)


def iter_log_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and every regular file under the folders named (sorted, hidden ones skipped)."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts):
                    yield child
        else:
            yield path


class _FileScan:
    """The state of scanning one file: findings by (entry, rank), the running line count."""

    def __init__(self, path: Path, matcher: Matcher, result: ScanResult):
        self.path = path
        self.label = str(path)
        self.matcher = matcher
        self.result = result
        self.file_rank = rank_of_file(path.name)
        try:
            self.year = datetime.fromtimestamp(path.stat().st_mtime).year
        except OSError:
            self.year = datetime.now().year
        self.findings: dict[tuple[str, int | None], Finding] = {}

    def scan_block(self, data: bytes, first_line: int) -> None:
        if first_line == 1:
            # The ranks a combined log holds: every rank logs at start-up, so the first block names them all;
            # reading prefixes further would cost a pass over every block for nothing new.
            self.result.ranks_seen.update(int(r) for r in set(_RANK_PREFIX.findall(data)))
        counted_to, line_number = 0, first_line
        for start, end in candidate_lines(data, MAX_LINE_BYTES):
            line_number += data.count(b"\n", counted_to, start)
            counted_to = start
            self.look_at(decode_line(data[start:end]), line_number)

    def look_at(self, text: str, line_number: int) -> None:
        entry = self.matcher.classify(text)
        if entry is None:
            if looks_like_error(text):
                self.result.unrecognized.add(text, self.label, line_number)
            return
        rank = rank_of_line(text, self.file_rank)
        key = (entry.id, rank)
        finding = self.findings.get(key)
        if finding is not None:
            finding.count += 1
            return
        self.findings[key] = Finding(entry, self.label, line_number, rank, time_of_line(text, self.year),
                                     text.strip()[:EXCERPT_CHARS])


def scan(paths: Iterable[Path], entries: tuple[ErrorEntry, ...], *,
         on_progress: Callable[[int], None] | None = None) -> ScanResult:
    """Scan every file under `paths`; a file that cannot be read is noted in `unreadable` and the rest scanned.

    `on_progress(bytes)` is called after each block with the number of bytes just scanned.
    """
    matcher = Matcher(entries)
    result = ScanResult()
    for path in iter_log_files(paths):
        state = _FileScan(path, matcher, result)
        try:
            for block in read_blocks(path):
                state.scan_block(block.data, block.first_line)
                result.bytes_scanned += len(block.data)
                if on_progress:
                    on_progress(len(block.data))
        except LogReadError as exc:
            if exc.lines_read == 0:
                result.unreadable.append(str(exc))
                continue
            result.partly_read.append(f"{exc} (what came before was scanned)")
        result.files.append(state.label)
        if state.file_rank is not None:
            result.ranks_seen.add(state.file_rank)
        result.findings.extend(state.findings.values())
    return result
