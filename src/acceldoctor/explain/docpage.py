"""Markdown for the knowledge base: one page per domain in docs/errors/, and one entry for `acceldoctor doc ID`."""

from __future__ import annotations

import re
from collections import defaultdict

from acceldoctor.explain.knowledge import ErrorEntry


def _flat(text: str) -> str:
    return " ".join(text.split())


def entry_markdown(entry: ErrorEntry, heading: str = "#") -> str:
    lines = [f"{heading} `{entry.id}`: {entry.title}", "",
             f"**Category:** `{entry.category}` · **Severity:** {entry.severity}", "",
             _flat(entry.explanation), "", "**Likely causes**", ""]
    lines += [f"- {_flat(c)}" for c in entry.causes]
    lines += ["", "**What to do**", ""]
    lines += [f"{i}. {_flat(a)}" for i, a in enumerate(entry.actions, start=1)]
    lines += ["", "**Recognized by** (Python regular expressions" +
              (", case-sensitive" if entry.case_sensitive else ", ignoring case") + ")", ""]
    lines += [f"- `{p}`" for p in entry.patterns]
    lines += ["", "**Example log lines**", "", "```"] + list(entry.examples) + ["```", "", "**References**", ""]
    lines += [f"- {r}" for r in entry.references]
    return "\n".join(lines) + "\n"


def domain_pages(entries: tuple[ErrorEntry, ...]) -> dict[str, str]:
    """Relative path under docs/ -> page: errors/index.md and errors/<domain>.md."""
    by_domain: dict[str, list[ErrorEntry]] = defaultdict(list)
    for entry in entries:
        by_domain[entry.domain].append(entry)
    pages: dict[str, str] = {}
    index = ["# Known errors", "",
             "Generated from `data/errors/*.yaml` by `python -m acceldoctor.docgen`; `acceldoctor explain LOGS` "
             "recognizes each of these in a log, and `acceldoctor doc ID` shows one.", "",
             "| id | category | severity | title |", "|---|---|---|---|"]
    for domain, members in sorted(by_domain.items()):
        body = [f"# Known errors: {domain}", "", f"{len(members)} entries. Back to the [index](index.md).", ""]
        for entry in members:
            body.append(entry_markdown(entry, heading="##"))
            anchor = github_anchor(f"{entry.id}: {entry.title}")
            index.append(f"| [`{entry.id}`]({domain}.md#{anchor}) | {entry.category} | {entry.severity} | "
                         f"{entry.title.replace('|', '/')} |")
        pages[f"errors/{domain}.md"] = "\n".join(body)
    pages["errors/index.md"] = "\n".join(index) + "\n"
    return pages


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and MkDocs' default) gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
