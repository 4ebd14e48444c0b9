"""Writing a support bundle: everything a vendor engineer asks for first, in one .tar.gz, secrets redacted.

`build_bundle` runs the collectors (collect.py, tools.py), redacts what each returns (redact.py) and streams it
into the archive, copies the given logs redacted and capped (logs.py), and writes manifest.json last: what is in,
what was skipped and why, how much was redacted where. The archive is written through report.writer.atomic_output
(a hidden temporary file next to the output, renamed at the end), so the output path never holds half a bundle.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import tarfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from acceldoctor import __version__
from acceldoctor.bundle import collect, tools
from acceldoctor.bundle.collect import Collected, Item, Skipped, unique_name
from acceldoctor.bundle.logs import copied
from acceldoctor.bundle.redact import StreamRedactor, redact_json
from acceldoctor.explain.reader import LogReadError
from acceldoctor.messages import describe_exception
from acceldoctor.report.writer import ReportWriteError, atomic_output

BUNDLE_SCHEMA = "acceldoctor.bundle/1"
BUNDLE_SUFFIXES = (".tar.gz", ".tgz")
DEFAULT_MAX_LOG_BYTES = 50 << 20
FILE_MODE = 0o600  # it describes this machine and its jobs: for the owner to pass on
T = TypeVar("T")


class BundleError(Exception):
    """The bundle could not be written (one line)."""


@dataclass
class BundleRequest:
    output: Path
    logs: list[Path] = field(default_factory=list)
    reports: list[Path] | None = None  # None: the most recent reports in `cwd`
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    cwd: Path = field(default_factory=Path.cwd)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    tool_timeout: float = tools.TOOL_TIMEOUT_S


@dataclass
class Member:
    name: str
    bytes: int
    redactions: dict[str, int] = field(default_factory=dict)
    source: str | None = None
    note: str | None = None
    truncated: bool = False  # only part of the source is in the bundle (a log cut to its tail, or read in part)


@dataclass
class BundleResult:
    path: Path
    folder: str
    size: int = 0
    members: list[Member] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def redactions(self) -> int:
        return sum(sum(m.redactions.values()) for m in self.members)


def _json_bytes(value) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8", errors="surrogateescape")


def redact_item(item: Item) -> tuple[bytes, Counter]:
    """The bytes to store for an item, and the redactions made in it (by kind)."""
    counts = Counter(item.counts)
    if item.kind == "json":
        try:
            document = json.loads(item.data)
        except ValueError:
            pass  # stored as text, redacted as text
        else:
            return _json_bytes(redact_json(document, counts)), counts
    redactor = StreamRedactor()
    data = redactor.feed_bytes(item.data)
    counts.update(redactor.counts)
    return data, counts


class _Archive:
    def __init__(self, fileobj, folder: str, mtime: float):
        self.folder, self.mtime = folder, mtime
        # Closed by build_bundle's `with archive.tar`, after the last member.
        self.tar = tarfile.open(fileobj=fileobj, mode="w:gz", compresslevel=6,  # noqa: SIM115
                                format=tarfile.PAX_FORMAT)
        top = self._info("", 0)
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        self.tar.addfile(top)
        self.names: set[str] = set()

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(f"{self.folder}/{name}".rstrip("/"))
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        return info

    def add(self, name: str, reader, size: int) -> None:
        self.tar.addfile(self._info(name, size), reader)


def _host_label() -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname()).strip("-.") or "host"


def _log_sources(paths: list[Path], output: Path) -> list[tuple[Path, str]]:
    """(file, member name) for every file the given logs name: logs/NAME, or logs/FOLDER/RELATIVE for folders."""
    from acceldoctor.explain.scan import iter_log_files

    found = []
    for arg in paths:
        if arg.is_dir():
            base = arg.resolve().name or "root"
            found += [(f, f"logs/{base}/{f.relative_to(arg).as_posix()}") for f in iter_log_files([arg])]
        else:
            found.append((arg, f"logs/{arg.name or 'log'}"))
    return [(f, name) for f, name in found if f.resolve() != output]


class _Builder:
    def __init__(self, request: BundleRequest, archive: _Archive, result: BundleResult, say: Callable[[str], None]):
        self.request, self.archive, self.result, self.say = request, archive, result, say

    def store(self, collected: Collected) -> None:
        for thing in collected:
            if isinstance(thing, Skipped):
                self.result.skipped.append(thing)
                continue
            data, counts = redact_item(thing)
            name = unique_name(thing.name, self.archive.names)
            self.archive.add(name, io.BytesIO(data), len(data))
            self.result.members.append(Member(name, len(data), dict(counts), thing.source, thing.note))

    def run(self, label: str, collector: Callable[[], Collected]) -> None:
        self.say(f"collecting {label}")
        collected = guarded(collector)
        if isinstance(collected, BaseException):  # one broken collector costs its own item, never the bundle
            collected = [Skipped(label, f"failed: {describe_exception(collected, where=True)}")]
        self.store(collected)

    def copy_logs(self, sources: list[tuple[Path, str]]) -> list[Path]:
        """Store each log redacted; return the files that could be read, for explain."""
        readable = []
        cap = self.request.max_log_bytes
        for path, name in sources:
            self.say(f"redacting {path}")
            try:
                with copied(path, cap, self.request.output.parent) as log:
                    if log.compressed and name.endswith(".gz"):
                        name = name[:-3]
                    name = unique_name(name, self.archive.names)
                    self.archive.add(name, log.reader, log.size)
                    notes = ["decompressed"] if log.compressed else []
                    if log.partial:
                        notes.append(log.partial)
                    if log.truncated:
                        notes.append(f"kept the last {log.size / 2**20:.1f} MiB of {log.text_bytes / 2**20:.1f} MiB")
                    self.result.members.append(Member(name, log.size, dict(log.counts), str(path),
                                                      "; ".join(notes) or None, log.truncated or bool(log.partial)))
            except LogReadError as exc:
                reason = str(exc).removeprefix(f"{path}: ")
                self.result.skipped.append(Skipped(name, reason, str(path)))
                continue
            readable.append(path)
        return readable

    def manifest(self, created: datetime) -> bytes:
        by_kind: Counter = Counter()
        for member in self.result.members:
            by_kind.update(member.redactions)
        request = self.request
        document = {
            "schema": BUNDLE_SCHEMA, "acceldoctor_version": __version__,
            "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "host": socket.gethostname(), "folder": self.result.folder,
            "options": {"logs": [str(p) for p in request.logs],
                        "reports": None if request.reports is None else [str(p) for p in request.reports],
                        "max_log_mb": request.max_log_bytes / 2**20, "tool_timeout_s": request.tool_timeout},
            "members": [asdict(m) for m in self.result.members],
            "skipped": [asdict(s) for s in self.result.skipped],
            "redactions": sum(by_kind.values()), "redactions_by_kind": dict(sorted(by_kind.items())),
        }
        return _json_bytes(redact_json(document))


def build_bundle(request: BundleRequest, progress: Callable[[str], None] | None = None) -> BundleResult:
    """Write the bundle to `request.output` (replacing it whole at the end); raises BundleError (one line)."""
    say = progress or (lambda _message: None)
    created = datetime.now(timezone.utc)
    output = request.output
    result = BundleResult(output, f"acceldoctor-bundle-{_host_label()}-{created:%Y%m%dT%H%M%SZ}")
    try:
        with atomic_output(output, FILE_MODE, what="the bundle") as raw:
            archive = _Archive(raw, result.folder, created.timestamp())
            with archive.tar:
                _collect_all(_Builder(request, archive, result, say), created)
    except ReportWriteError as exc:
        raise BundleError(str(exc)) from None
    result.size = output.stat().st_size
    return result


def guarded(call: Callable[[], T]) -> T | BaseException:
    """What `call` returns, or what it raised: anything but Ctrl-C, SIGTERM (Terminated) and sys.exit, for a vendor
    runtime may raise a BaseException of its own."""
    try:
        return call()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return exc


def _collect_all(builder: _Builder, created: datetime) -> None:
    request = builder.request
    builder.say("discovering devices")
    inventory = guarded(collect.discover_devices)  # a failure is noted in devices.json's and versions.json's place
    builder.run("versions.json", lambda: collect.collect_versions(inventory))
    builder.run("devices.json", lambda: collect.collect_devices(inventory))
    builder.run("pip-freeze.txt", collect.collect_pip_freeze)
    builder.run("environment.txt", lambda: collect.collect_environment(request.environ))
    builder.run("tools/", lambda: tools.collect_tools(request.tool_timeout))
    builder.run("kernel-log.txt", lambda: tools.collect_kernel_log(request.tool_timeout))
    builder.run("reports/", lambda: collect.collect_reports(request.reports, request.cwd))
    readable = builder.copy_logs(_log_sources(request.logs, request.output.resolve()))
    if request.logs:
        builder.say("explaining the logs")
    builder.run("explain.json", lambda: collect.collect_explain(readable))
    data = builder.manifest(created)
    builder.archive.add("manifest.json", io.BytesIO(data), len(data))
