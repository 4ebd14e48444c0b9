"""Outputs of programs: vendor tools (nvidia-smi, npu-smi, rocm-smi, xpu-smi, lspci) and the kernel log. Each
program runs with a time limit, in a session of its own so that a hung one is stopped with its children; a
program that is not on PATH, fails, or is not allowed to read is named in a Skipped, never an exception."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from acceldoctor.bundle.collect import Collected, Item, Skipped
from acceldoctor.messages import first_line

TOOL_TIMEOUT_S = 20.0
MAX_TOOL_OUTPUT_BYTES = 16 << 20
KERNEL_LOG_LINES = 2000
# (member stem, command lines to try in order: the first whose program is on PATH runs)
TOOLS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("nvidia-smi-q", (("nvidia-smi", "-q"),)),
    ("nvidia-smi-topo", (("nvidia-smi", "topo", "-m"),)),
    ("npu-smi-info", (("npu-smi", "info"),)),
    ("rocm-smi", (("rocm-smi", "--showallinfo"), ("amd-smi", "static"))),
    ("xpu-smi-discovery", (("xpu-smi", "discovery"),)),
    ("lspci", (("lspci", "-nn"),)),
)


def run_tool(argv: list[str] | tuple[str, ...], timeout: float = TOOL_TIMEOUT_S) -> tuple[int | None, bytes, str]:
    """(exit status, or None when it timed out; stdout and stderr; a one-line note). Never raises."""
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        return 127, b"", f"could not start {argv[0]}: {exc.strerror or exc}"
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild of its own session holds the pipe
            proc.kill()
            out = b""
        return None, out[:MAX_TOOL_OUTPUT_BYTES], f"timed out after {timeout:g} s"
    note = "" if proc.returncode == 0 else f"exit status {proc.returncode}"
    if len(out) > MAX_TOOL_OUTPUT_BYTES:
        out, note = out[:MAX_TOOL_OUTPUT_BYTES], (note + "; " if note else "") + "output cut at 16 MiB"
    return proc.returncode, out, note


def collect_tools(timeout: float = TOOL_TIMEOUT_S) -> Collected:
    """Vendor tools' own view of the devices (telemetry, topology, firmware), each when it is on PATH."""
    collected: Collected = []
    for stem, commands in TOOLS:
        name = f"tools/{stem}.txt"
        argv = next((c for c in commands if shutil.which(c[0])), None)
        if argv is None:
            collected.append(Skipped(name, " / ".join(c[0] for c in commands) + " not on PATH"))
            continue
        code, out, note = run_tool(argv, timeout)
        header = f"$ {' '.join(argv)}\n# {note or 'exit status 0'}\n\n".encode()
        collected.append(Item(name, header + out, source=" ".join(argv), note=note or None))
    return collected


def _tail_lines(data: bytes, lines: int) -> bytes:
    kept = data.splitlines(keepends=True)[-lines:]
    return b"".join(kept)


def _read_tail(path: Path, lines: int, window: int = 4 << 20) -> bytes:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - window))
        return _tail_lines(f.read(), lines)


def collect_kernel_log(timeout: float = TOOL_TIMEOUT_S, lines: int = KERNEL_LOG_LINES) -> Collected:
    """The kernel's own log (Xid, AER, driver resets, OOM kills): dmesg, else kern.log, else the journal."""
    tried: list[str] = []
    if shutil.which("dmesg"):
        code, out, note = run_tool(["dmesg"], timeout)
        if code == 0 and out.strip():
            return [Item("kernel-log.txt", _tail_lines(out, lines), source="dmesg", note=f"last {lines} lines")]
        tried.append(f"dmesg: {first_line(out.decode(errors='replace')) or note or 'no output'}")
    else:
        tried.append("dmesg: not on PATH")
    kern_log = Path("/var/log/kern.log")
    try:
        data = _read_tail(kern_log, lines)
        if data.strip():
            return [Item("kernel-log.txt", data, source=str(kern_log), note=f"last {lines} lines")]
        tried.append(f"{kern_log}: empty")
    except OSError as exc:
        tried.append(f"{kern_log}: {exc.strerror or exc}")
    if shutil.which("journalctl"):
        code, out, note = run_tool(["journalctl", "-k", "-n", str(lines), "--no-pager", "-q"], timeout)
        if code == 0 and out.strip() and b"No entries" not in out[:200]:
            return [Item("kernel-log.txt", out, source="journalctl -k", note=f"last {lines} lines")]
        tried.append(f"journalctl -k: {first_line(out.decode(errors='replace')) or note or 'no entries'}")
    else:
        tried.append("journalctl: not on PATH")
    return [Skipped("kernel-log.txt", "not readable here (" + "; ".join(tried) + ")")]
