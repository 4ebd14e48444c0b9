"""Read log files of any size as blocks of whole lines, in bounded memory.

Files may be plain or gzip-compressed (recognized by content, not name), hold bytes that are not UTF-8, or lines
of many megabytes: a line is held back for the next block only while it is shorter than MAX_LINE_BYTES, so memory
stays bounded by the block size; a longer one is passed on in pieces (it keeps one line number) and the scanner
looks at no more than MAX_LINE_BYTES around a match. A file whose first block holds NUL bytes is binary.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BLOCK_BYTES = 4 << 20
MAX_LINE_BYTES = 64 << 10
GZIP_MAGIC = b"\x1f\x8b"


class LogReadError(Exception):
    """A file that cannot be scanned (missing, unreadable, binary, corrupt); the message is one line.

    `lines_read` is how many lines were delivered before the problem: a compressed log cut short (gzipped while
    still being written) has its readable part scanned, and the caller keeps what it found there.
    """

    def __init__(self, message: str, lines_read: int = 0):
        super().__init__(message)
        self.lines_read = lines_read


@dataclass(frozen=True)
class Block:
    data: bytes  # whole lines, each ending with b"\n" (the last one may lack it at the end of the file)
    first_line: int  # 1-based number of the block's first line in the file


def _open(path: Path):
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise LogReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LogReadError(f"{path}: is a folder") from None
    except OSError as exc:
        raise LogReadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        head = raw.peek(2)[:2]  # peek, not read and seek: a pipe (`<(zcat log)`) cannot seek
    except OSError as exc:
        raw.close()
        raise LogReadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return gzip.GzipFile(fileobj=raw, mode="rb") if head == GZIP_MAGIC else raw


def _read_chunk(stream, size: int) -> tuple[bytes, Exception | None]:
    """Up to `size` bytes, and the decompression error that stopped the read early, if any. A compressed stream is
    read piece by piece so that what decompressed before damage is delivered, not lost with the failing read."""
    if not isinstance(stream, gzip.GzipFile):
        return stream.read(size), None
    pieces: list[bytes] = []
    got = 0
    while got < size:
        try:
            piece = stream.read1(size - got)
        except (OSError, EOFError, zlib.error) as exc:
            return b"".join(pieces), exc
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces), None


def read_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Blocks of whole lines from `path`; raises LogReadError (one line) for a file that is not a readable log."""
    path = Path(path)
    stream = _open(path)
    line_number = 1
    carry = b""
    first = True
    try:
        with stream:
            while True:
                chunk, damage = _read_chunk(stream, block_bytes)
                if damage is not None:
                    data = carry + chunk
                    if data:
                        yield Block(data, line_number)
                        line_number += data.count(b"\n") + (not data.endswith(b"\n"))
                    raise LogReadError(f"{path}: corrupt or truncated compressed data after line {line_number - 1} "
                                       f"({damage})", lines_read=line_number - 1)
                if first:
                    first = False
                    if b"\x00" in chunk[:8192]:
                        raise LogReadError(f"{path}: binary file, not a text log")
                if not chunk:
                    if carry:
                        yield Block(carry, line_number)
                    return
                data = carry + chunk
                cut = data.rfind(b"\n") + 1
                if cut == 0 and len(data) < MAX_LINE_BYTES:
                    carry = data  # a line still growing: wait for its end
                    continue
                if cut == 0:
                    cut = len(data)
                whole, carry = data[:cut], data[cut:]
                if len(carry) > MAX_LINE_BYTES:  # a huge line: pass it on in pieces; it keeps one line number
                    whole, carry = whole + carry, b""
                yield Block(whole, line_number)
                line_number += whole.count(b"\n")
    except OSError as exc:
        raise LogReadError(f"{path}: cannot read after line {line_number - 1}: {exc.strerror or exc}",
                           lines_read=line_number - 1) from None


def decode_line(raw: bytes) -> str:
    """A log line as text: UTF-8 where it is, U+FFFD for bytes that are not, without the line break."""
    return raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
