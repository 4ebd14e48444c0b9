"""The archive as a whole: written whole or not at all, through report.writer's atomic_output, and a collector
(device discovery included) that fails in any way costs only its own item."""

import gzip
import json
import tarfile

import pytest

from acceldoctor.bundle import collect
from acceldoctor.bundle.build import BundleError, BundleRequest, build_bundle
from acceldoctor.report.writer import ReportWriteError, atomic_output, write_atomically


def test_the_bundle_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "b.tgz"
    out.write_bytes(b"previous bundle")

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(collect, "collect_pip_freeze", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_bundle(BundleRequest(output=out, cwd=tmp_path, environ={}))
    assert out.read_bytes() == b"previous bundle" and sorted(p.name for p in tmp_path.iterdir()) == ["b.tgz"]


def test_a_failing_collector_costs_only_its_item(tmp_path, monkeypatch):
    def broken():
        raise ValueError("metadata is corrupt")

    monkeypatch.setattr(collect, "collect_pip_freeze", broken)
    (tmp_path / "a.log").write_text("hello\n")
    out = tmp_path / "b.tar.gz"
    result = build_bundle(BundleRequest(output=out, logs=[tmp_path / "a.log", tmp_path / "gone.log", out],
                                        cwd=tmp_path, environ={}))
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    skipped = {s.name: s for s in result.skipped}
    assert "ValueError: metadata is corrupt" in skipped["pip-freeze.txt"].reason
    assert skipped["logs/gone.log"].reason == "no such file" and skipped["logs/gone.log"].source.endswith("gone.log")
    with tarfile.open(out) as tar:
        names = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()]
    assert names[-1] == "manifest.json" and "logs/a.log" in names and "logs/b.tar.gz" not in names
    assert result.folder.startswith("acceldoctor-bundle-") and result.folder.endswith("Z")


class VendorAbort(BaseException):
    """What a vendor runtime's binding may raise: not an Exception, not Ctrl-C either."""


def test_device_discovery_failing_in_any_way_costs_only_its_items(tmp_path, monkeypatch):
    def broken():
        raise VendorAbort("driver/library version mismatch")

    monkeypatch.setattr(collect, "discover_devices", broken)
    out = tmp_path / "b.tgz"
    result = build_bundle(BundleRequest(output=out, cwd=tmp_path, environ={}, tool_timeout=5))
    skipped = {s.name: s.reason for s in result.skipped}
    assert skipped["devices.json"].startswith("device discovery failed: VendorAbort: driver/library version mismatch")
    with tarfile.open(out) as tar:
        folder = result.folder
        versions = json.load(tar.extractfile(f"{folder}/versions.json"))
        manifest = json.load(tar.extractfile(f"{folder}/manifest.json"))
    assert versions["host_error"] == "VendorAbort: driver/library version mismatch" and versions["python"]
    assert any(s["name"] == "devices.json" for s in manifest["skipped"])


def test_a_compressed_log_cut_short_is_bundled_up_to_where_it_breaks(tmp_path):
    text = "".join(f"line {i:07d} {'x' * 50}\n" for i in range(200_000)).encode()  # 12 MiB: 4 MiB blocks
    packed = gzip.compress(text)
    log = tmp_path / "cut.log.gz"
    log.write_bytes(packed[: len(packed) // 2])
    result = build_bundle(BundleRequest(output=tmp_path / "b.tgz", logs=[log], cwd=tmp_path, environ={},
                                        tool_timeout=5))
    assert not [s for s in result.skipped if s.name.startswith("logs/")]
    [member] = [m for m in result.members if m.name == "logs/cut.log"]
    assert member.truncated and "truncated compressed data after line " in member.note and member.bytes > 4 << 20
    assert member.note.startswith("decompressed; ")


def test_atomic_output_replaces_the_file_whole_or_leaves_it_as_it_was(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"before")
    with pytest.raises(KeyboardInterrupt), atomic_output(path, 0o600) as f:
        f.write(b"half")
        raise KeyboardInterrupt
    with pytest.raises(ReportWriteError, match=r"^cannot write the thing to .*out.bin: No space left on device$"), \
            atomic_output(path, what="the thing") as f:
        raise OSError(28, "No space left on device")
    assert path.read_bytes() == b"before" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with atomic_output(path, 0o640) as f:
        f.write(b"after")
    assert path.read_bytes() == b"after" and oct(path.stat().st_mode & 0o777) == "0o640"
    write_atomically(path, "text \u00e9\n", 0o604, what="report")
    assert path.read_text(encoding="utf-8") == "text \u00e9\n" and oct(path.stat().st_mode & 0o777) == "0o604"
    with pytest.raises(ReportWriteError, match="^cannot write report to .*: No such file or directory$"):
        write_atomically(tmp_path / "gone" / "r.json", "{}", what="report")


def test_a_bundle_that_cannot_be_written_is_a_one_line_error(tmp_path):
    with pytest.raises(BundleError, match="^cannot write the bundle to .*b.tgz: No such file or directory$"):
        build_bundle(BundleRequest(output=tmp_path / "gone" / "b.tgz", cwd=tmp_path, environ={}, tool_timeout=5))
