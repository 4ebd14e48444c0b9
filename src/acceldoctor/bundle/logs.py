"""Copy a log into the bundle redacted, keeping at most its last `cap` bytes, in bounded memory and disk.

Plain files larger than the cap are read from `size - cap` on (the first partial line dropped); whether that point
lies inside a PEM private key is decided by the first key marker after it, so a key cut in half still goes.
Compressed logs are decompressed as they are read (explain's reader: gzip by content, binary files refused) and
their redacted text kept in two rotating temporary files of `cap` bytes, of which the tail is stored.
"""

from __future__ import annotations

import contextlib
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


def _line_blocks(f: BinaryIO) -> Iterator[bytes]:
    """Blocks of whole lines from the current position; a line over MAX_LINE_BYTES is cut at a space if it can be."""
    carry = b""
    while chunk := f.read(BLOCK_BYTES):
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < MAX_LINE_BYTES:
                carry = data
                continue
            cut = max(data.rfind(b" "), data.rfind(b"\t")) + 1 or len(data)
        yield data[:cut]
        carry = data[cut:]
    if carry:
        yield carry


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

    def close(self) -> None:
        self.sink.close()


def _open_error(path: Path, exc: OSError) -> LogReadError:
    if isinstance(exc, FileNotFoundError):
        return LogReadError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return LogReadError(f"{path}: is a folder")
    return LogReadError(f"{path}: cannot read: {exc.strerror or exc}")


def copy_redacted(path: Path, cap: int, folder: Path | None = None) -> CopiedLog:
    """Redact `path` into temporary storage, keeping its last `cap` bytes; raises LogReadError (one line)."""
    try:
        size = path.stat().st_size
        if not path.is_file() and not path.is_dir():
            raise LogReadError(f"{path}: not a regular file")
        with path.open("rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise _open_error(path, exc) from None
    compressed = head[:2] == GZIP_MAGIC
    in_key, start = False, 0
    if not compressed and size > cap:
        if b"\x00" in head:
            raise LogReadError(f"{path}: binary file, not a text log")
        try:
            with path.open("rb") as f:
                start = _line_start(f, size - cap, size)
                in_key = _starts_inside_key(f, start)
        except OSError as exc:
            raise _open_error(path, exc) from None
    redactor = StreamRedactor(in_private_key=in_key)
    sink = TailSink(cap, folder)
    read = 0
    try:
        if start:
            with path.open("rb") as f:
                f.seek(start)
                for block in _line_blocks(f):
                    sink.write(redactor.feed_bytes(block))
                    read += len(block)
        else:
            for block in read_blocks(path):
                sink.write(redactor.feed_bytes(block.data))
                read += len(block.data)
        reader, kept = sink.finish()
    except OSError as exc:
        sink.close()
        raise _open_error(path, exc) from None
    except BaseException:
        sink.close()
        raise
    truncated = bool(start) or kept < sink.written
    return CopiedLog(reader, kept, read + start, size, truncated, compressed, redactor.counts, sink)


@contextlib.contextmanager
def copied(path: Path, cap: int, folder: Path | None = None) -> Iterator[CopiedLog]:
    log = copy_redacted(path, cap, folder)
    try:
        yield log
    finally:
        log.close()
