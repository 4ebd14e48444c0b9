"""Logs of any size and shape are read as whole lines in bounded memory; what is not a log is refused in one line."""

import gzip

import pytest

from acceldoctor.explain.reader import MAX_LINE_BYTES, LogReadError, decode_line, read_blocks


def _lines(path, block_bytes=64):
    text = b"".join(b.data for b in read_blocks(path, block_bytes=block_bytes))
    return text.split(b"\n")


def test_blocks_hold_whole_lines_and_know_their_first_line_number(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(1, 101)))
    blocks = list(read_blocks(path, block_bytes=64))
    assert len(blocks) > 5
    for block in blocks:
        assert block.data.endswith(b"\n")
        assert block.data.split(b"\n")[0] == b"line %d" % block.first_line


def test_gzip_is_recognized_by_content_not_name(tmp_path):
    path = tmp_path / "rank-1.log.1"
    path.write_bytes(gzip.compress(b"hello\nNCCL WARN something\n"))
    assert _lines(path)[:2] == [b"hello", b"NCCL WARN something"]


def test_a_huge_line_is_passed_on_in_pieces_without_growing_memory(tmp_path):
    path = tmp_path / "huge.log"
    path.write_bytes(b"x" * (5 * MAX_LINE_BYTES) + b"\nafter\n")
    blocks = list(read_blocks(path, block_bytes=MAX_LINE_BYTES // 2))
    assert max(len(b.data) for b in blocks) <= 2 * MAX_LINE_BYTES
    last = blocks[-1]
    assert last.data.endswith(b"after\n") and last.first_line == 1  # still the first line until its end


def test_bytes_that_are_not_utf8_are_replaced_not_fatal(tmp_path):
    assert decode_line(b"bad \xff\xfe byte\r\n") == "bad \ufffd\ufffd byte"


@pytest.mark.parametrize("content, expected", [
    (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "binary file"),
    (b"\x1f\x8b\x08\x00garbage-not-gzip", "corrupt or truncated"),
])
def test_binary_and_corrupt_files_are_refused(tmp_path, content, expected):
    path = tmp_path / "x.log"
    path.write_bytes(content)
    with pytest.raises(LogReadError, match=expected):
        list(read_blocks(path))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(LogReadError, match="no such file"):
        list(read_blocks(tmp_path / "nope.log"))
    with pytest.raises(LogReadError, match="is a folder"):
        list(read_blocks(tmp_path))


def test_empty_file_has_no_blocks(tmp_path):
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    assert list(read_blocks(path)) == []


def test_a_gzip_cut_short_delivers_what_came_before_and_says_where_it_stopped(tmp_path):
    path = tmp_path / "rank-0.log.gz"
    whole = gzip.compress(b"".join(b"line %d\n" % i for i in range(1, 20001)))
    path.write_bytes(whole[:-20])  # gzipped while still being written
    lines = []
    with pytest.raises(LogReadError, match="truncated compressed data after line") as info:
        for block in read_blocks(path, block_bytes=4096):
            lines += block.data.split(b"\n")[:-1]
    assert info.value.lines_read >= 19000 and lines[0] == b"line 1"


def test_a_pipe_is_read_without_seeking(tmp_path):
    import os

    read_end, write_end = os.pipe()
    os.write(write_end, b"first\nsecond\n")
    os.close(write_end)
    path = f"/dev/fd/{read_end}"
    try:
        assert b"".join(b.data for b in read_blocks(path)) == b"first\nsecond\n"
    finally:
        os.close(read_end)
