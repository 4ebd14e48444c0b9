"""Huawei Ascend telemetry through the `npu-smi` command of the Ascend driver.

There is no Python library to ask, so the text `npu-smi info` prints is parsed: `Key : value` lines, in blocks per
chip. Parsing is pure (tested on recorded outputs); only NpuSmiTelemetry runs the command, with a short timeout.

`npu-smi` numbers a card (`-i`, the NPU ID) and its chips (`-c`); torch numbers logical devices. `npu-smi info -m`
maps a chip's logic id to its card and chip, and ASCEND_RT_VISIBLE_DEVICES maps torch's `npu:N` to a logic id.
Limitation: inside a container that sees only some NPUs, npu-smi may number them as the host does while the runtime
numbers them from 0; when the mapping does not hold, the reading is of the NPU npu-smi calls by that number.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

from acceldoctor.devices.telemetry.base import HEALTH_OK, TelemetrySample, TelemetrySource

# One call of npu-smi takes well under a second; a hung driver must not hold the burn's sampling for long.
TIMEOUT_S = 5.0
# Health and ECC change rarely and cost two more calls: read them at most this often (the judge needs their changes,
# not every interval's copy), so a host with eight NPUs sampled each second does not run 24 npu-smi a second.
SLOW_EVERY_S = 10.0

# A `Key : value` line. Table borders ("|", "+") and the continuation lines of a multi-line value (no key) are not.
_FIELD = re.compile(r"^\s*([^\s|+:][^:]*?)\s*:\s*(.*?)\s*$")

TEMPERATURE_KEYS = ("Temperature(C)", "NPU Temperature (C)", "Temperature (C)")
POWER_KEYS = ("NPU Real-time Power(W)",)  # 310's "Rated Power Dissipation(W)" is the rating, not a reading
CLOCK_KEYS = ("Aicore curFreq(MHZ)",)  # "Aicore Freq(MHZ)" is the rated clock
HEALTH_KEYS = ("Health Status", "Healthy", "Health")
# Counts since the driver loaded; the "Aggregate Total" lines count over the chip's life and are left out.
UNCORRECTED_KEYS = ("HBM Double Bit Error Count", "DDR Double Bit Error Count", "Double-bit Error Count")
CORRECTED_KEYS = ("HBM Single Bit Error Count", "DDR Single Bit Error Count", "Single-bit Error Count")


def parse_npu_smi_fields(text: str, chip: int | None = None) -> dict[str, str]:
    """The `Key : value` lines of `npu-smi info -t ...` output.

    A card's output may list several chips ("Chip ID : n" opens each block) and then, after a blank line, a block for
    its MCU ("Chip Name : mcu") with its own Temperature(C). Kept: the lines before the first chip (card-wide) and the
    block of `chip` (the first chip when None); a key's first occurrence wins, so the MCU never replaces the NPU.
    """
    fields: dict[str, str] = {}
    section = "card"  # "card", "chip" (the one asked for), "other" (another chip), "after" (past a chip's block)
    wanted = chip
    for line in text.splitlines():
        if not line.strip():
            if section == "chip":
                section = "after"
            continue
        match = _FIELD.match(line)
        if not match:
            continue
        key, value = match.groups()
        if key == "Chip ID":
            current = int(value) if value.isdigit() else None
            if wanted is None:
                wanted = current
            section = "chip" if current == wanted else "other"
        if section in ("card", "chip"):
            fields.setdefault(key, value)
    return fields


def parse_npu_chip_map(text: str) -> dict[int, tuple[int, int]]:
    """`npu-smi info -m` as {chip logic id: (NPU ID, chip id)}; MCU rows (logic id "-") are left out."""
    chips: dict[int, tuple[int, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and all(part.isdigit() for part in parts[:3]):
            chips[int(parts[2])] = (int(parts[0]), int(parts[1]))
    return chips


def _number(fields: dict[str, str], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        try:
            return float(fields[key])
        except (KeyError, ValueError):  # absent, or "NA" where the chip does not offer it
            continue
    return None


def _count(fields: dict[str, str], keys: tuple[str, ...]) -> int | None:
    values = [int(fields[key]) for key in keys if fields.get(key, "").isdigit()]
    return sum(values) if values else None


def health_word(fields: dict[str, str]) -> str | None:
    """"OK", or npu-smi's word for what is wrong (Warning, Alarm, Critical...); None when not reported."""
    word = next((fields[key] for key in HEALTH_KEYS if fields.get(key) and fields[key] != "NA"), None)
    if word is None:
        return None
    return HEALTH_OK if word.upper() == HEALTH_OK else word


def error_codes(fields: dict[str, str]) -> list[str]:
    """The error codes `npu-smi info -t health` lists ("Error Code : 80E18005 80CB8009"), "NA" meaning none."""
    return [code for code in fields.get("Error Code", "").split() if code.upper() != "NA"]


def sample_from_npu_smi(common: dict[str, str], health: dict[str, str] | None = None,
                        ecc: dict[str, str] | None = None) -> TelemetrySample:
    """One sample from the parsed `-t common`, `-t health` and `-t ecc` outputs (the last two may be missing)."""
    health, ecc = health or {}, ecc or {}
    return TelemetrySample(
        temperature_c=_number(common, TEMPERATURE_KEYS),
        power_w=_number(common, POWER_KEYS),
        clock_mhz=_number(common, CLOCK_KEYS),
        ecc_corrected=_count(ecc, CORRECTED_KEYS),
        ecc_uncorrected=_count(ecc, UNCORRECTED_KEYS),
        health=health_word(health),
    )


class NpuSmiTelemetry(TelemetrySource):
    """One Ascend chip's readings: `npu-smi info -t common` each read, `-t health` and `-t ecc` every SLOW_EVERY_S."""

    name = "npu-smi"

    def __init__(self, executable: str, card: int, chip: int, timeout_s: float = TIMEOUT_S,
                 slow_every_s: float = SLOW_EVERY_S):
        self.executable, self.card, self.chip, self.timeout_s = executable, card, chip, timeout_s
        self.slow_every_s = slow_every_s
        self.last_error = ""
        self.timed_out = False
        self._slow_read_at: float | None = None  # when health and ECC were last read; the first read takes them
        self._codes_seen: set[str] = set()

    def run(self, *args: str) -> str | None:
        """The output of `npu-smi ARGS`, or None (and `last_error` says why) when it fails or hangs."""
        try:
            done = subprocess.run([self.executable, *args], capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.last_error = f"no answer within {self.timeout_s:g} s"
            return None
        except OSError as exc:
            self.last_error = str(exc)
            return None
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            self.last_error = said[0] if said else f"exit status {done.returncode}"
            return None
        return done.stdout

    def _fields(self, kind: str, per_chip: bool) -> dict[str, str] | None:
        args = ["info", "-t", kind, "-i", str(self.card)] + (["-c", str(self.chip)] if per_chip else [])
        text = self.run(*args)
        return None if text is None else parse_npu_smi_fields(text, chip=self.chip)

    def read(self) -> TelemetrySample:
        self.timed_out = False
        common = self._fields("common", per_chip=False)  # lists every chip of the card: the parser picks ours
        health = ecc = None
        # A driver that let one call hang would hang the next ones too: this read ends there.
        now = time.monotonic()
        if not self.timed_out and (self._slow_read_at is None or now - self._slow_read_at >= self.slow_every_s):
            self._slow_read_at = now
            health = self._fields("health", per_chip=True)
            ecc = None if self.timed_out else self._fields("ecc", per_chip=True)
        sample = sample_from_npu_smi(common or {}, health, ecc)
        if health is not None:
            codes = error_codes(health)
            sample.xid = [code for code in codes if code not in self._codes_seen]
            self._codes_seen.update(codes)
        return sample


def _logic_id(index: int) -> int:
    """The chip logic id behind torch's `npu:index`: the index-th entry of ASCEND_RT_VISIBLE_DEVICES when set."""
    visible = [entry.strip() for entry in os.environ.get("ASCEND_RT_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    if index < len(visible) and visible[index].isdigit():
        return int(visible[index])
    return index


def open_npu_smi(index: int, timeout_s: float = TIMEOUT_S) -> tuple[NpuSmiTelemetry | None, str]:
    """A reader for `npu:index`, or None and why not in one sentence."""
    executable = shutil.which("npu-smi")
    if executable is None:
        return None, "npu-smi was not found on PATH; it comes with the Ascend driver (/usr/local/sbin/npu-smi)"
    logic = _logic_id(index)
    probe = NpuSmiTelemetry(executable, logic, 0, timeout_s)
    chip_map = parse_npu_chip_map(probe.run("info", "-m") or "")
    # One chip per card (910B and most others) when the map cannot be read: the card is the logic id.
    card, chip = chip_map.get(logic, (logic, 0))
    source = NpuSmiTelemetry(executable, card, chip, timeout_s)
    if source.run("info", "-t", "common", "-i", str(card)) is None:
        return None, f"`npu-smi info -t common -i {card}` failed ({source.last_error})"
    return source, "read through npu-smi"
