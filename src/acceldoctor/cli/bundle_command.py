"""`acceldoctor bundle -o FILE.tar.gz [LOGS...] [--report PATH]... [--max-log-mb N]`."""

from __future__ import annotations

import math
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from acceldoctor.cli.errors import UsageError
from acceldoctor.signals import Terminated, terminate_as_interrupt


def _check_output(output: Path) -> None:
    from acceldoctor.bundle.build import BUNDLE_SUFFIXES

    if not output.name.endswith(BUNDLE_SUFFIXES):
        raise UsageError(f"the bundle must be a .tar.gz or .tgz file, not {output}")
    parent = output.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write the bundle to {output}: folder {parent} does not exist")
    if output.is_dir():
        raise UsageError(f"cannot write the bundle to {output}: it is a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the bundle to {output}: permission denied in {parent}")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def _summary(result, console: Console) -> None:
    groups: dict[str, list] = {}
    for member in result.members:
        top = member.name.split("/", 1)[0] + "/" if "/" in member.name else member.name
        groups.setdefault(top, []).append(member)
    parts = []
    for top, members in groups.items():
        redacted = sum(sum(m.redactions.values()) for m in members)
        size = _size(sum(m.bytes for m in members))
        files = f"{len(members)} file{'s' if len(members) != 1 else ''}"
        label = f"{top} ({files}, {size}" if top.endswith("/") else f"{top} ({size}"
        parts.append(label + (f", {redacted} redacted)" if redacted else ")"))
    console.print(f"Wrote {escape(str(result.path))} ({_size(result.size)}): {len(result.members)} files, "
                  f"{result.redactions} secret(s) redacted.", highlight=False)
    console.print("  in it: " + escape(", ".join(parts)), highlight=False)
    for member in result.members:
        if member.name == "explain.json" and member.note:
            console.print(f"  explain: {escape(member.note)}", highlight=False)
        elif member.truncated and member.note:
            console.print(f"  {escape(member.name)}: {escape(member.note)}", highlight=False)
    for skipped in result.skipped:
        if skipped.source and skipped.name.startswith("logs/"):
            console.print(f"not bundled: {escape(skipped.source)}: {escape(skipped.reason)}", highlight=False)
        else:
            console.print(f"  skipped {escape(skipped.name)}: {escape(skipped.reason)}", highlight=False)


def run_bundle_command(output: Path, logs: list[Path], reports: list[Path] | None, max_log_mb: float) -> int:
    from acceldoctor.bundle.build import BundleError, BundleRequest, build_bundle

    _check_output(output)
    max_log_bytes = max_log_mb * 2**20
    if not (max_log_mb > 0 and math.isfinite(max_log_bytes)):  # nan, inf, and 1e308 (inf once in bytes)
        raise UsageError(f"--max-log-mb must be a finite number more than 0, not {max_log_mb:g}")
    request = BundleRequest(output=output, logs=list(logs), reports=list(reports) if reports else None,
                            max_log_bytes=max(1, int(max_log_bytes)))
    console = Console(highlight=False, soft_wrap=True)
    progress_console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        with terminate_as_interrupt():
            if progress_console.is_terminal:
                with progress_console.status("collecting the bundle") as status:
                    result = build_bundle(request, lambda message: status.update(escape(message)))
            else:
                result = build_bundle(request, lambda message: progress_console.print(escape(message)))
    except BundleError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        raise UsageError(f"{'terminated' if terminated else 'interrupted'}; no bundle was written",
                         exit_code=143 if terminated else 130) from None
    _summary(result, console)
    return 0
