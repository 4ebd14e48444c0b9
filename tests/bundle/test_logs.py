"""A log's copy in the bundle: redacted, capped to its tail at a line start, in bounded memory; a long line read
in parts is redacted as if whole; a compressed log cut short is kept up to where it breaks."""

import gzip

import pytest

from acceldoctor.bundle import logs
from acceldoctor.bundle.logs import copy_redacted
from acceldoctor.bundle.redact import StreamRedactor
from acceldoctor.explain.reader import MAX_LINE_BYTES, LogReadError


def _lines(n, width=60):
    return "".join(f"line {i:06d} " + "x" * (width - 13) + "\n" for i in range(n))


def test_a_log_over_the_cap_keeps_its_last_whole_lines(tmp_path):
    log = tmp_path / "big.log"
    log.write_text(_lines(1000))
    copied = copy_redacted(log, cap=6000)
    data = copied.reader.read(-1)
    assert len(data) == copied.size <= 6000 and copied.truncated and not copied.compressed
    assert data.startswith(b"line ") and data.endswith(b"line 000999 " + b"x" * 47 + b"\n")
    assert copied.text_bytes == copied.file_bytes == 60000
    copied.close()


def test_a_gzip_log_is_decompressed_and_its_tail_kept_in_bounded_storage(tmp_path):
    log = tmp_path / "big.log.gz"
    log.write_bytes(gzip.compress((_lines(5000) + "password=hunter2\n").encode()))
    copied = copy_redacted(log, cap=10000)
    data = copied.reader.read(-1)
    assert len(data) == copied.size <= 10000 and copied.truncated and copied.compressed
    assert data.startswith(b"line ") and data.endswith(b"password=<redacted>\n")
    assert copied.text_bytes == 5000 * 60 + 17 and copied.counts == {"secret_pair": 1}
    copied.close()


def test_a_key_cut_by_the_cap_leaks_none_of_its_lines(tmp_path):
    log = tmp_path / "key.log"
    body = [f"KEYMATERIAL{i:04d}" + "Q" * 50 for i in range(100)]
    log.write_text(_lines(100) + "-----BEGIN PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END PRIVATE KEY-----\n"
                   + "after the key\n")
    copied = copy_redacted(log, cap=3000)
    data = copied.reader.read(-1)
    assert b"KEYMATERIAL" not in data and data == b"-----END PRIVATE KEY-----\nafter the key\n"
    copied.close()


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"\x7fELF\x00\x00\x01binary"), "binary file, not a text log"),
    (lambda p: p.write_bytes(b"\x1f\x8b\x08 not really gzip"), "corrupt or truncated compressed data"),
])
def test_a_log_that_cannot_be_copied_says_why(tmp_path, make, reason):
    path = tmp_path / "x.log"
    make(path)
    with pytest.raises(LogReadError, match=reason):
        copy_redacted(path, cap=1000)


KiB = 1 << 10
# (offset in the long line where the secret is cut in two, the text holding it, what must not be left of it)
ACROSS_CUTS = [
    (64 * KiB, " password=Hunter2AcrossTheCut ", b"Hunter2Across"),
    (128 * KiB, " hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123 ", b"AbCdEfGhIjKl"),
    (192 * KiB, " Authorization: Bearer TokenAcrossTheLastCut99 ", b"TokenAcross"),
]


def _long_line(length=200 * KiB) -> bytes:
    """A line of `length` bytes, words and then a run without separators, with a secret across each 64 KiB mark."""
    line = bytearray((b"lorem ipsum dolor " * (length // 18 + 1))[:length])
    line[150 * KiB: 170 * KiB] = b"Q" * (20 * KiB)  # a stretch of no separators (base64, a hex dump)
    for at, text, _ in ACROSS_CUTS:
        start = at - len(text) // 2
        line[start: start + len(text)] = text.encode()
    return bytes(line)


def _expected(text: bytes) -> bytes:
    return StreamRedactor().feed_bytes(text)  # the whole text at once: no cut anywhere


@pytest.mark.parametrize("compressed", [False, True])
def test_a_secret_across_the_cut_of_a_long_line_is_redacted(tmp_path, compressed):
    """A 200 KiB line read in 64 KiB pieces (the reader cuts a line over MAX_LINE_BYTES where its block ends): each
    secret placed across a cut is redacted, and the copy is what redacting the text whole gives."""
    text = b"first line\n" + _long_line() + b"\nlast line password=AfterTheLongLine\n"
    log = tmp_path / ("long.log.gz" if compressed else "long.log")
    log.write_bytes(gzip.compress(text) if compressed else text)
    copied = copy_redacted(log, cap=1 << 20, block_bytes=64 * KiB)
    data = copied.reader.read(-1)
    copied.close()
    for _, _, secret in ACROSS_CUTS:
        assert secret not in data
    assert b"AfterTheLongLine" not in data and data == _expected(text)
    assert copied.counts == {"secret_pair": 2, "token": 1, "bearer_token": 1}


def test_a_secret_across_a_cut_is_redacted_in_the_tail_of_a_plain_log(tmp_path):
    """Read from the middle (over the cap), in chunks cut anywhere: dense secrets, so cuts fall inside some."""
    prefix = "".join(f"old line {i:05d}\n" for i in range(2000)).encode()
    dense = b"".join(b"k%05d password=Sekrit%05dValue " % (i, i) for i in range(8000))
    text = prefix + dense + b"\n" + _long_line() + b"\n"
    log = tmp_path / "dense.log"
    log.write_bytes(text)
    copied = copy_redacted(log, cap=len(text) - 10000, block_bytes=64 * KiB)
    data = copied.reader.read(-1)
    copied.close()
    expected = _expected(text)
    assert copied.truncated and data.startswith(b"old line ") and expected.endswith(data)
    assert b"Sekrit" not in data and b"Hunter2Across" not in data


def test_a_cut_is_made_where_no_secret_straddles_it():
    data = b"x " * 5000 + b"password=Hunter2Hunter2"
    at = logs._safe_cut(data)
    assert len(data) - at >= logs.CUT_CONTEXT and logs._cut_is_safe(data, at)
    assert not logs._cut_is_safe(b"a password=Hunter2Hunter2 b", len(b"a password=Hunt"))


def test_a_compressed_log_cut_short_keeps_what_came_before(tmp_path):
    text = "".join(f"line {i:06d} {'x' * 40}\n" for i in range(20000)).encode()
    packed = gzip.compress(text)
    log = tmp_path / "cut.log.gz"
    log.write_bytes(packed[: len(packed) // 2])
    copied = copy_redacted(log, cap=1 << 20, block_bytes=64 * KiB)
    data = copied.reader.read(-1)
    copied.close()
    assert data and text.startswith(data) and copied.compressed and not copied.truncated
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    assert copied.partial == f"truncated compressed data after line {lines}"


def test_a_long_line_is_held_back_in_bounded_memory():
    pieces, out = logs._Pieces(), []
    for _ in range(64):
        out.append(pieces.feed(b"y" * (64 * KiB)))
        assert len(pieces.held) < MAX_LINE_BYTES
    assert b"".join([*out, pieces.rest()]) == b"y" * (64 * 64 * KiB)
