"""Where a log line comes from: its rank (from the line or the file name) and its time, when the log says so."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# `[rank3]:` (torchrun's prefix) and `[Rank 3]` tag the line with the rank that wrote it.
RANK_TAG = r"\[rank\s*(\d+)\]"  # matched ignoring case; scan.py searches raw blocks with the same pattern
_RANK_TAG = re.compile(RANK_TAG, re.IGNORECASE)
# `rank=3`, `Rank 3`, `RANK: 3` in a message may name the writer, or a peer ("remote rank 5"), or a setting
# ("lora rank: 16"): only trusted when nothing better is known, and never after words that name another rank.
_RANK_MENTION = re.compile(r"(?<![\w.])(?<!peer )(?<!remote )(?<!src )(?<!dst )(?<!source )(?<!destination )"
                           r"(?<!lora )(?<!local )(?<!global )rank[ =:]+(\d+)\b", re.IGNORECASE)
# rank-3.log, rank_3, rank3.txt, worker-3 / node files are not ranks; `-r3` is too ambiguous to guess.
_RANK_IN_NAME = re.compile(r"rank[-_.]?(\d+)", re.IGNORECASE)


def rank_of_line(line: str, file_rank: int | None = None) -> int | None:
    """The rank that wrote `line`: its `[rankN]` tag, else the rank its file is named after, else a plain
    `rank N` in the message that does not name a peer or a setting."""
    tagged = _RANK_TAG.search(line)
    if tagged is not None:
        return int(tagged.group(1))
    if file_rank is not None:
        return file_rank
    mentioned = _RANK_MENTION.search(line)
    return int(mentioned.group(1)) if mentioned else None


def rank_of_file(name: str) -> int | None:
    found = _RANK_IN_NAME.search(name)
    return int(found.group(1)) if found else None


@dataclass(frozen=True, order=True)
class LogTime:
    """A point in time as a log states it. `kind` separates clocks that cannot be compared with each other: wall
    clock times (seconds since the epoch, year assumed when the log omits it) and seconds since boot (dmesg)."""

    kind: str  # "wall" or "boot"
    seconds: float
    text: str

    def comparable(self, other: LogTime) -> bool:
        return self.kind == other.kind


_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), start=1)}
# Formats seen in training logs, most specific first.
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,6}))?")
_CANN = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?")  # plog: 2024-05-10-11:22:33.444
_GLOG = re.compile(r"\b[IWEF](\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?")  # E1125 10:42:31.123456
_SYSLOG = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})")
_DMESG = re.compile(r"^\[\s*(\d+\.\d+)\]")


def _wall(year: int, month: int, day: int, hour: int, minute: int, second: int, fraction: str | None,
          text: str) -> LogTime | None:
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    seconds = moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)
    return LogTime("wall", seconds, text)


def time_of_line(line: str, default_year: int) -> LogTime | None:
    """The first timestamp in `line` in a known format, or None. Only the line's first 200 characters are read."""
    head = line[:200]
    found = _CANN.search(head)
    if found:
        y, mo, d, h, mi, s, frac = found.groups()
        return _wall(int(y), int(mo), int(d), int(h), int(mi), int(s), frac, found.group(0))
    found = _ISO.search(head)
    if found:
        y, mo, d, h, mi, s, frac = found.groups()
        return _wall(int(y), int(mo), int(d), int(h), int(mi), int(s), frac, found.group(0))
    found = _GLOG.search(head)
    if found:
        mo, d, h, mi, s, frac = found.groups()
        return _wall(default_year, int(mo), int(d), int(h), int(mi), int(s), frac, found.group(0))
    found = _SYSLOG.search(head)
    if found:
        mon, d, h, mi, s = found.groups()
        return _wall(default_year, _MONTHS[mon.lower()], int(d), int(h), int(mi), int(s), None, found.group(0))
    found = _DMESG.search(head)
    if found:
        return LogTime("boot", float(found.group(1)), found.group(0))
    return None
