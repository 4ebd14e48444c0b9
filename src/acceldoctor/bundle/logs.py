"""Copy a log into the bundle redacted, keeping at most its last `cap` bytes, in bounded memory and disk.

Logs are read with explain's reader (gzip by content, binary files refused, a compressed log cut short kept up to
where it breaks), except the tail of a plain file over the cap, read from `size - cap` on (the first partial line
dropped); whether that point lies inside a PEM private key is decided by the first key marker after it, so a key
cut in half still goes. The redacted text goes to two rotating temporary files of `cap` bytes, of which the tail
is stored. A line too long to hold (over MAX_LINE_BYTES) reaches the redactor in parts, each cut at a point where
redacting the two sides apart gives what redacting them together does, so a secret across a cut is still found.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from acceldoctor.bundle.redact import StreamRedactor
from acceldoctor.explain.reader import BLOCK_BYTES, GZIP_MAGIC, MAX_LINE_BYTES, LogReadError, read_blocks

_KEY_MARKER = re.compile(rb"-----(BEGIN|END) [A-Z0-9 ]*PRIVATE KEY")


class _Chain:
    """read(n) over the rest of several files in turn, as tarfile wants: n bytes while there are n left."""

    def __init__(self, files: list[BinaryIO]):
        self.files = files

    def read(self, n: int = -1) -> bytes:
        parts, want = [], n
        while self.files and (want < 0 or want > 0):
            chunk = self.files[0].read(want)
            if not chunk:
                self.files.pop(0)
                continue
            parts.append(chunk)
            if want > 0:
                want -= len(chunk)
        return b"".join(parts)


class TailSink:
    """Keeps the last `cap` bytes (from a line start) of what is written, in at most two temporary files."""

    def __init__(self, cap: int, folder: Path | None = None):
        self.cap, self.folder = cap, folder
        self.previous: BinaryIO | None = None
        self.current: BinaryIO = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (closed by close())
        self.written = 0

    def write(self, data: bytes) -> None:
        self.current.write(data)
        self.written += len(data)
        if self.current.tell() >= self.cap:
            if self.previous is not None:
                self.previous.close()
            self.previous, self.current = self.current, tempfile.TemporaryFile(dir=self.folder)  # noqa: SIM115

    def finish(self) -> tuple[_Chain, int]:
        """A reader of the kept bytes, and their number."""
        current_size = self.current.tell()
        self.current.seek(0)
        if self.previous is None:
            return _Chain([self.current]), current_size
        previous_size = self.previous.tell()
        start = _line_start(self.previous, previous_size - (self.cap - current_size), previous_size)
        self.previous.seek(start)
        return _Chain([self.previous, self.current]), previous_size - start + current_size

    def close(self) -> None:
        for f in (self.previous, self.current):
            if f is not None:
                f.close()


def _line_start(f: BinaryIO, offset: int, size: int) -> int:
    """The first line start at or after `offset` (or `offset` itself when no line ends within MAX_LINE_BYTES)."""
    if offset <= 0:
        return 0
    f.seek(offset - 1)
    window = f.read(MAX_LINE_BYTES)
    newline = window.find(b"\n")
    return offset if newline in (-1, 0) else min(size, offset + newline)


def _starts_inside_key(f: BinaryIO, offset: int) -> bool:
    """Whether the first private key marker at or after `offset` ends a key (the text starts inside one)."""
    f.seek(offset)
    overlap = b""
    while chunk := f.read(BLOCK_BYTES):
        found = _KEY_MARKER.search(overlap + chunk)
        if found:
            return found[1] == b"END"
        overlap = chunk[-64:]
    return False


CUT_CONTEXT = 1024  # bytes each side of a cut through a long line over which the redaction is checked
_CUT_TRIES = 64
_SEPARATOR = re.compile(rb"[\s,;&]")


def _redacted(data: bytes) -> bytes:
    return StreamRedactor().feed_bytes(data)


def _cut_is_safe(data: bytes, at: int) -> bool:
    """Whether cutting `data` at `at` changes nothing the redaction does within CUT_CONTEXT bytes either side:
    then no secret (up to CUT_CONTEXT bytes long) straddles the cut."""
    before, after = data[max(0, at - CUT_CONTEXT): at], data[at: at + CUT_CONTEXT]
    return _redacted(before) + _redacted(after) == _redacted(before + after)


def _safe_cut(data: bytes) -> int:
    """Where to cut `data`, which ends inside a line too long to hold: at least CUT_CONTEXT bytes before its end (the
    check needs the text after the cut), after a separator where there is one, where no secret straddles the cut.
    Among text made of nothing but secret-looking spans, where every point tried fails, the last one is taken."""
    high = len(data) - CUT_CONTEXT
    if high <= 0:
        return 0
    low = max(0, high - 8 * CUT_CONTEXT)
    after_separators = [m.end() for m in _SEPARATOR.finditer(data, low, high)][::-1]
    anywhere = range(high, low, -(CUT_CONTEXT // 4))  # for text without separators (base64, hex dumps)
    for at in itertools.islice(itertools.chain(after_separators[: _CUT_TRIES // 2], anywhere), _CUT_TRIES):
        if _cut_is_safe(data, at):
            return at
    return high


class _Pieces:
    """Makes the chunks a file is read in into pieces the redactor can take one at a time: whole lines, and parts of
    a line too long to hold (over MAX_LINE_BYTES), each cut at a point _safe_cut found; the text after that point is
    held back and given with the next chunk. Holds at most MAX_LINE_BYTES."""

    def __init__(self) -> None:
        self.held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self.held + chunk if self.held else chunk
        if data.endswith(b"\n"):
            self.held = b""
            return data
        cut = data.rfind(b"\n") + 1
        if len(data) - cut >= MAX_LINE_BYTES:
            cut = _safe_cut(data)  # within the last line: it is longer than the stretch _safe_cut looks at
        self.held = data[cut:]
        return data[:cut]

    def rest(self) -> bytes:
        rest, self.held = self.held, b""
        return rest


@dataclass
class CopiedLog:
    reader: _Chain
    size: int  # bytes stored
    text_bytes: int  # the whole log's size as text (after decompression)
    file_bytes: int  # its size on disk
    truncated: bool
    compressed: bool
    counts: Counter
    sink: TailSink
    partial: str | None = None  # why the log was read only up to some line (what came before is kept)

    def close(self) -> None:
        self.sink.close()


def _tail_chunks(path: Path, start: int, block_bytes: int) -> Iterator[bytes]:
    """The bytes of a plain file from `start` on, in chunks cut anywhere (_Pieces makes lines of them).

    Not explain's read_blocks: it reads a file from its first byte, and the point of a tail is that the part of a
    large log before it is never read (read_blocks did open the file first, and refused it if missing or binary).
    """
    try:
        with path.open("rb") as f:
            f.seek(start)
            while chunk := f.read(block_bytes):
                yield chunk
    except OSError as exc:
        raise LogReadError(f"{path}: cannot read: {exc.strerror or exc}") from None


def copy_redacted(path: Path, cap: int, folder: Path | None = None, block_bytes: int = BLOCK_BYTES) -> CopiedLog:
    """Redact `path` into temporary storage, keeping its last `cap` bytes; raises LogReadError (one line)."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise LogReadError(f"{path}: not a regular file")  # a pipe or device: could block, or never end
    blocks = read_blocks(path, block_bytes)
    try:
        first = next(blocks, None)  # opens the file: missing, a folder, unreadable, binary: LogReadError
        size = path.stat().st_size
        with path.open("rb") as f:
            compressed = f.read(2) == GZIP_MAGIC
            start = _line_start(f, size - cap, size) if not compressed and size > cap else 0
            in_key = bool(start) and _starts_inside_key(f, start)
    except OSError as exc:  # removed or made unreadable since read_blocks opened it
        blocks.close()
        raise LogReadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if start:
        blocks.close()
        chunks: Iterator[bytes] = _tail_chunks(path, start, block_bytes)
    else:
        chunks = itertools.chain([first.data] if first else [], (block.data for block in blocks))
    redactor = StreamRedactor(in_private_key=in_key)
    sink = TailSink(cap, folder)
    pieces = _Pieces()
    read, partial = 0, None
    try:
        try:
            for chunk in chunks:
                sink.write(redactor.feed_bytes(pieces.feed(chunk)))
                read += len(chunk)
        except LogReadError as exc:
            if not exc.lines_read:
                raise
            # gzipped while still being written, or a read error: keep what came before it
            partial = (f"truncated compressed data after line {exc.lines_read}" if compressed
                       else str(exc).removeprefix(f"{path}: "))
        sink.write(redactor.feed_bytes(pieces.rest()))
        reader, kept = sink.finish()
    except OSError as exc:  # the temporary files
        sink.close()
        raise LogReadError(f"{path}: cannot copy: {exc.strerror or exc}") from None
    except BaseException:
        sink.close()
        raise
    finally:
        blocks.close()
    truncated = bool(start) or kept < sink.written
    return CopiedLog(reader, kept, read + start, size, truncated, compressed, redactor.counts, sink, partial)


@contextlib.contextmanager
def copied(path: Path, cap: int, folder: Path | None = None) -> Iterator[CopiedLog]:
    log = copy_redacted(path, cap, folder)
    try:
        yield log
    finally:
        log.close()
