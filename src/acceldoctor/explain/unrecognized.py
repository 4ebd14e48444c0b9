"""Error-looking lines no knowledge-base entry knows, grouped into templates as error trackers group events.

Normalizing is a pipeline of pure functions, each replacing one kind of variable part (a timestamp, an address,
a path, a number...) by a placeholder, so that five thousand lines that differ only in those become one template
with a count and a few examples.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from acceldoctor.explain.matcher import CODE_SHAPES

# What makes a line an error worth grouping (a warning is not; a traceback's last line is).
ERROR_LOOKING = re.compile(
    r"\b(?:ERROR|FATAL|CRITICAL|FAILED|FAILURE)\b"  # upper-case severity words
    r"|\w(?:Error|Exception|Fault):"  # Python and C++ exception names: ValueError: ...
    r"|\b(?:error|fatal error|failure)\s*:"  # error: ... / Error: ...
    r"|\bE[A-Z]\d{4}\b|\bERR\d{5}\b"  # vendor code shapes (CANN E-codes, torch_npu ERR codes)
    r"|\b(?:Segmentation fault|core dumped|Aborted)\b"
)
_ERROR_WORD_ANY_CASE = re.compile(r"\berror\b\s*[:\]]|\bfailed\b", re.IGNORECASE)


# Every line ERROR_LOOKING or _ERROR_WORD_ANY_CASE accepts holds one of these (lower-cased) or a vendor code shape:
# a cheap gate before the regular expressions.
_ERROR_STEMS = ("err", "fatal", "critical", "fail", "exception", "fault", "abort", "core dumped")
_CODE_SHAPE = re.compile(b"|".join(CODE_SHAPES).decode("ascii"))  # the vendor code shapes the scanner gates on


def looks_like_error(line: str) -> bool:
    lower = line.lower()
    if not any(stem in lower for stem in _ERROR_STEMS) and _CODE_SHAPE.search(line) is None:
        return False
    return bool(ERROR_LOOKING.search(line) or _ERROR_WORD_ANY_CASE.search(line))


Step = Callable[[str], str]


def regex_step(name: str, pattern: str, placeholder: str, flags: int = 0) -> Step:
    """A normalizing step named `name` that replaces every match of `pattern` (the portal's grouping uses it too)."""
    regex = re.compile(pattern, flags)

    def step(text: str) -> str:
        return regex.sub(placeholder, text)

    step.__name__ = step.__qualname__ = name
    return step


strip_ansi = regex_step("strip_ansi", r"\x1b\[[0-9;]*[A-Za-z]", "")
replace_timestamps = regex_step("replace_timestamps", 
    r"\d{4}-\d{2}-\d{2}[-T ]\d{2}:\d{2}:\d{2}(?:[.,:]\d+)*(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\b[IWEF]\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?"
    r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d{2}:\d{2}:\d{2}"
    r"|^\[\s*\d+\.\d+\]", "<TIME>")
replace_uuids = regex_step(
    "replace_uuids", r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<UUID>", re.IGNORECASE)
replace_hex = regex_step("replace_hex", r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", "<HEX>", re.IGNORECASE)
replace_ips = regex_step("replace_ips", r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<IP>")
replace_pci = regex_step("replace_pci", r"\b[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d\b", "<PCI>", re.IGNORECASE)
replace_paths = regex_step("replace_paths", r"(?:(?<=\s)|(?<=^)|(?<=[\"'(=]))(?:/[\w.@+-]+)+/?", "<PATH>")
replace_quoted = regex_step("replace_quoted", r"'[^'\n]{1,200}'|\"[^\"\n]{1,200}\"", "<STR>")
replace_rank_prefixes = regex_step("replace_rank_prefixes", r"\[rank\s*\d+\]", "[rank<NUM>]", re.IGNORECASE)
replace_numbers = regex_step("replace_numbers", r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", "<NUM>",
                             re.IGNORECASE)
collapse_spaces = regex_step("collapse_spaces", r"\s+", " ")

PIPELINE: tuple[Step, ...] = (strip_ansi, replace_timestamps, replace_uuids, replace_pci, replace_ips, replace_hex,
                              replace_paths, replace_quoted, replace_rank_prefixes, replace_numbers,
                              collapse_spaces)


def normalize(line: str, pipeline: tuple[Step, ...] = PIPELINE) -> str:
    for step in pipeline:
        line = step(line)
    return line.strip()[:300]


@dataclass
class Template:
    template: str
    count: int = 0
    examples: list[str] = field(default_factory=list)
    first_file: str = ""
    first_line: int = 0


class UnrecognizedGroups:
    """Counts error-looking lines by template; keeps up to `max_examples` examples and `max_templates` templates
    (later new templates are counted in `dropped`, so memory stays bounded on a log of endless unique errors)."""

    def __init__(self, max_examples: int = 3, max_templates: int = 10_000):
        self.max_examples = max_examples
        self.max_templates = max_templates
        self.templates: dict[str, Template] = {}
        self.dropped = 0

    def add(self, line: str, file: str, line_number: int) -> None:
        key = normalize(line)
        group = self.templates.get(key)
        if group is None:
            if len(self.templates) >= self.max_templates:
                self.dropped += 1
                return
            group = self.templates[key] = Template(key, first_file=file, first_line=line_number)
        group.count += 1
        if len(group.examples) < self.max_examples:
            group.examples.append(line.strip()[:500])

    def top(self, limit: int = 50) -> list[Template]:
        return sorted(self.templates.values(), key=lambda t: (-t.count, t.first_file, t.first_line))[:limit]
