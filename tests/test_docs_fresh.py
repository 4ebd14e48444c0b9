"""The docs are generated from the check declarations and data files; they must not drift."""

from pathlib import Path

from acceldoctor.docgen import GENERATED_FOLDERS, render_docs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_generated_docs_are_committed_and_fresh():
    expected = render_docs()
    stale = [rel for rel, text in expected.items()
             if not (DOCS / rel).is_file() or (DOCS / rel).read_text(encoding="utf-8") != text]
    assert not stale, f"docs are stale; run `python -m acceldoctor.docgen`: {stale}"
    extra = {p.relative_to(DOCS).as_posix() for folder in GENERATED_FOLDERS for p in (DOCS / folder).glob("*.md")}
    assert not extra - set(expected), f"pages for checks or error domains that no longer exist: {sorted(extra)}"


def test_every_check_page_explains_failure_and_remedy():
    for rel, text in render_docs().items():
        if rel.startswith("checks/") and rel != "checks/index.md":
            for heading in ("## What it verifies", "## Why it matters", "## What a failure means", "## What to do"):
                assert heading in text, f"{rel} lacks {heading}"
