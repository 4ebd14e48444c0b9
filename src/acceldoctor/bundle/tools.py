"""Outputs of programs: vendor tools (nvidia-smi, npu-smi, rocm-smi, xpu-smi, lspci) and the kernel log. Each
program runs with a time limit, in a session of its own so that a hung one is stopped with its children; a
program that is not on PATH, fails, or is not allowed to read is named in a Skipped, never an exception."""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import time
from pathlib import Path

from acceldoctor.bundle.collect import Collected, Item, Skipped
from acceldoctor.messages import first_line

TOOL_TIMEOUT_S = 20.0
MAX_TOOL_OUTPUT_BYTES = 16 << 20
KERNEL_LOG_LINES = 2000
_READ_BYTES = 1 << 16
# (member stem, command lines to try in order: the first whose program is on PATH runs)
TOOLS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("nvidia-smi-q", (("nvidia-smi", "-q"),)),
    ("nvidia-smi-topo", (("nvidia-smi", "topo", "-m"),)),
    ("npu-smi-info", (("npu-smi", "info"),)),
    ("rocm-smi", (("rocm-smi", "--showallinfo"), ("amd-smi", "static"))),
    ("xpu-smi-discovery", (("xpu-smi", "discovery"),)),
    ("lspci", (("lspci", "-nn"),)),
)


def _read_capped(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, str | None]:
    """What the program writes until it closes its output, the deadline passes ("timeout") or `cap` bytes are
    exceeded ("overflow"): never more than `cap` + one read in memory."""
    chunks: list[bytes] = []
    size = 0
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks), "timeout"
            if not selector.select(left):
                continue
            chunk = os.read(fd, min(_READ_BYTES, cap + 1 - size))
            if not chunk:
                return b"".join(chunks), None
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                return b"".join(chunks)[:cap], "overflow"


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


def _stop(proc: subprocess.Popen) -> None:
    """Kill the program's whole session (its children too) unless it has been waited for already."""
    if proc.returncode is None:
        with contextlib.suppress(OSError):  # its group is gone already
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):  # in case it left its group
            proc.kill()


def run_tool(argv: list[str] | tuple[str, ...], timeout: float = TOOL_TIMEOUT_S,
             max_bytes: int = MAX_TOOL_OUTPUT_BYTES) -> tuple[int | None, bytes, str]:
    """(exit status, or None when it was stopped; stdout and stderr, at most `max_bytes`; a one-line note).

    Never raises but for Ctrl-C or SIGTERM, and then the program is killed with its children first: it runs in a
    session of its own (a hung one is stopped with what it started), which the terminal's Ctrl-C does not reach.
    """
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        return 127, b"", f"could not start {argv[0]}: {exc.strerror or exc}"
    deadline = time.monotonic() + timeout
    try:
        out, stopped = _read_capped(proc, deadline, max_bytes)
        if stopped is None:
            try:  # it closed its output; it may still be running
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stopped = "timeout"
        if stopped == "timeout":
            _stop(proc)
            # what it wrote just before it was killed (a grandchild of another session may hold the pipe: 5 s)
            rest, _ = _read_capped(proc, time.monotonic() + 5, max_bytes - len(out))
            return None, out + rest, f"timed out after {timeout:g} s"
        if stopped == "overflow":
            return None, out, f"output cut at {_size(max_bytes)}; stopped there"
        note = "" if proc.returncode == 0 else f"exit status {proc.returncode}"
        return proc.returncode, out, note
    finally:
        _stop(proc)
        proc.stdout.close()
        proc.wait()


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


def _why_not(code: int | None, out: bytes, note: str, otherwise: str) -> str:
    """Why a program's output was not taken: its first line (its error message), or why it was stopped."""
    if code is None:  # timed out or too much output: its first line says nothing about that
        return note
    return first_line(out.decode(errors="replace")) or note or otherwise


def collect_kernel_log(timeout: float = TOOL_TIMEOUT_S, lines: int = KERNEL_LOG_LINES) -> Collected:
    """The kernel's own log (Xid, AER, driver resets, OOM kills): dmesg, else kern.log, else the journal."""
    tried: list[str] = []
    if shutil.which("dmesg"):
        code, out, note = run_tool(["dmesg"], timeout)
        if code == 0 and out.strip():
            return [Item("kernel-log.txt", _tail_lines(out, lines), source="dmesg", note=f"last {lines} lines")]
        tried.append(f"dmesg: {_why_not(code, out, note, 'no output')}")
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
        tried.append(f"journalctl -k: {_why_not(code, out, note, 'no entries')}")
    else:
        tried.append("journalctl: not on PATH")
    return [Skipped("kernel-log.txt", "not readable here (" + "; ".join(tried) + ")")]
