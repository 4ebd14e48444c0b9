"""The error knowledge base: one YAML file per domain under data/errors/, each entry checked against this schema.

An entry says what an error is, in plain words, why it happens and what to do, and carries the regular
expressions that recognize it in a log and example lines that must match them. Categories are the fixed list
of DESIGN.md, so tools downstream can group findings across vendors.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from acceldoctor.datafiles import load_validated_yaml

ERRORS_SCHEMA = "acceldoctor.errors/1"

Category = Literal[
    "device_oom", "host_resource_exhausted", "illegal_memory_access", "device_side_assert", "hardware_fault",
    "collective_timeout", "network_error", "address_in_use", "op_unsupported", "compile_error", "driver_mismatch",
    "version_mismatch", "missing_dependency", "numeric_error", "hang", "device_unavailable", "config_error",
    "internal_error",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
Severity = Literal["info", "warning", "error", "critical"]


class KnowledgeDataError(ValueError):
    """A knowledge-base file that does not validate; the message is one line."""


class ErrorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$",
                    description="<domain>.<name>, lower case, e.g. 'cuda.out_of_memory', 'ascend.ee9999'.")
    title: str = Field(min_length=5, max_length=100)
    category: Category
    severity: Severity
    patterns: list[str] = Field(min_length=1, description="Python regular expressions searched in one log line.")
    case_sensitive: bool = Field(False, description="Patterns are matched ignoring case unless this is true.")
    explanation: str = Field(min_length=30, description="What happened, in plain words.")
    causes: list[str] = Field(min_length=1, description="Likely causes, most likely first.")
    actions: list[str] = Field(min_length=1, description="What to check or run, in order.")
    references: list[str] = Field(min_length=1, description="Public vendor documentation (URLs or titles).")
    examples: list[str] = Field(min_length=1, description="Real-looking log lines this entry must recognize.")
    secondary: bool = Field(False, description="Usually the consequence of another rank's failure (a peer that "
                            "closed its connection, a collective that timed out): never the first cause when "
                            "another rank logged a primary error.")

    _compiled: tuple[re.Pattern[str], ...] = PrivateAttr(default=())

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from exc
        return patterns

    @model_validator(mode="after")
    def _examples_match(self) -> ErrorEntry:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        self._compiled = tuple(re.compile(p, flags) for p in self.patterns)
        for example in self.examples:
            if not self.matches(example):
                raise ValueError(f"example {example!r} matches none of its patterns")
        return self

    def matches(self, line: str) -> bool:
        return any(p.search(line) for p in self._compiled)

    @property
    def domain(self) -> str:
        return self.id.split(".", 1)[0]


class ErrorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["acceldoctor.errors/1"] = Field(alias="schema")
    domain: str = Field(pattern=r"^[a-z0-9_]+$")
    about: str = Field(min_length=10, description="What this domain covers and where its codes are documented.")
    entries: list[ErrorEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_in_domain(self) -> ErrorFile:
        seen: set[str] = set()
        for entry in self.entries:
            if entry.domain != self.domain:
                raise ValueError(f"entry {entry.id!r} is not in domain {self.domain!r} (ids start with the domain)")
            if entry.id in seen:
                raise ValueError(f"entry {entry.id!r} is listed twice")
            seen.add(entry.id)
        return self


def parse_error_file(text: str, label: str) -> ErrorFile:
    return load_validated_yaml(text, label, ErrorFile, KnowledgeDataError)


@cache
def load_knowledge_base() -> tuple[ErrorEntry, ...]:
    """Every entry of every packaged domain file, in file order; raises KnowledgeDataError on a bad file."""
    folder = resources.files("acceldoctor.data").joinpath("errors")
    entries: list[ErrorEntry] = []
    seen: dict[str, str] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".yaml"):
            continue
        parsed = parse_error_file(item.read_text(encoding="utf-8"), f"data/errors/{item.name}")
        if item.name != f"{parsed.domain}.yaml":
            raise KnowledgeDataError(f"data/errors/{item.name} holds domain {parsed.domain!r}; name it "
                                     f"{parsed.domain}.yaml")
        for entry in parsed.entries:
            if entry.id in seen:
                raise KnowledgeDataError(f"entry {entry.id!r} is in both {seen[entry.id]} and {item.name}")
            seen[entry.id] = item.name
        entries.extend(parsed.entries)
    return tuple(entries)


def best_match(line: str, entries: tuple[ErrorEntry, ...]) -> ErrorEntry | None:
    """The entry that claims `line`: of the entries whose patterns match, a primary one before a `secondary` one
    (a wrapper such as "backend raised: <the real error>" yields to the real error on the same line), then the
    longest match (the most specific description of the error), then the earlier one (file order).

    This is the reference rule; the scanner's fast path must agree with it.
    """
    best: tuple[bool, int, int] | None = None
    chosen = None
    for order, entry in enumerate(entries):
        for pattern in entry._compiled:
            found = pattern.search(line)
            if found is None:
                continue
            rank = (not entry.secondary, found.end() - found.start(), -order)
            if best is None or rank > best:
                best, chosen = rank, entry
    return chosen


def check_examples(entries: tuple[ErrorEntry, ...]) -> list[str]:
    """One line per example that is claimed by another entry than its own (empty when all are right)."""
    problems = []
    for entry in entries:
        for example in entry.examples:
            winner = best_match(example, entries)
            if winner is not entry:
                problems.append(f"{entry.id}: example {example!r} is claimed by "
                                f"{winner.id if winner else 'no entry'}")
    return problems


if __name__ == "__main__":  # python -m acceldoctor.explain.knowledge: validate the packaged knowledge base
    import sys
    from collections import Counter

    try:
        kb = load_knowledge_base()
    except KnowledgeDataError as exc:
        sys.exit(f"error: {exc}")
    issues = check_examples(kb)
    for problem in issues:
        print(problem)
    by_domain = Counter(e.domain for e in kb)
    print(f"{len(kb)} entries ({', '.join(f'{d} {n}' for d, n in sorted(by_domain.items()))}); "
          f"{len(issues)} example(s) claimed by the wrong entry")
    sys.exit(1 if issues else 0)
