"""Real-world error excerpts from public issue threads (tests/explain/corpus/real_world.yaml, each with its source
address) are classified into the right category: at least 90% top-1 accuracy."""

import re
from collections import Counter
from pathlib import Path

import yaml

from acceldoctor.explain.knowledge import CATEGORIES, load_knowledge_base
from acceldoctor.explain.report import ordered
from acceldoctor.explain.rootcause import find_root_cause
from acceldoctor.explain.scan import scan

CORPUS = Path(__file__).parent / "corpus" / "real_world.yaml"
# What belongs to one log, never to an error's description: times, addresses, process ids.
INSTANCE_SPECIFIC = re.compile(r"\d{4}-\d{2}-\d{2}|\d\d:\d\d:\d\d|\b\d{1,3}(?:\.\d{1,3}){3}\b|0x[0-9a-f]{6,}|"
                               r"\b[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d\b|\bpid[:= ]+\d+", re.IGNORECASE)


def _predict(path: Path, entries) -> str | None:
    """The category explain leads with for a log: its root cause, else its most severe finding."""
    result = scan([path], entries)
    root = find_root_cause(result.findings, result.ranks_seen)
    if root is not None and root.finding is not None:
        return root.finding.entry.category
    findings = ordered(result.findings)
    return findings[0].entry.category if findings else None


def test_real_world_excerpts_are_classified_with_90_percent_accuracy(tmp_path):
    corpus = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    excerpts = corpus["excerpts"]
    assert len(excerpts) >= 60
    assert all(e["source"].startswith("https://") and e["category"] in CATEGORIES for e in excerpts)
    entries = load_knowledge_base()
    wrong = []
    for i, item in enumerate(excerpts):
        path = tmp_path / f"excerpt-{i}.log"
        path.write_text(item["excerpt"], encoding="utf-8")
        predicted = _predict(path, entries)
        if predicted != item["category"]:
            wrong.append(f"{item['source']}: expected {item['category']}, got {predicted}")
    accuracy = 1 - len(wrong) / len(excerpts)
    print(f"top-1 accuracy {accuracy:.1%} on {len(excerpts)} excerpts; "
          f"by category: {dict(Counter(e['category'] for e in excerpts))}")
    assert accuracy >= 0.90, f"{accuracy:.1%}; misclassified:\n" + "\n".join(wrong)


def test_the_knowledge_base_is_not_written_from_the_corpus():
    """Patterns express an error, not a sample. A fixed message (`CUDA error: device-side assert triggered`) reads
    the same in every log, so an entry may well contain it; what must not be copied is a sample's variable parts
    (numbers, paths, addresses, quoted names): no example is a corpus line that has some, and no pattern carries a
    literal run of 20+ characters that holds a time, an address or a process id and appears in a corpus excerpt."""
    corpus_lines = {line.strip() for item in yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["excerpts"]
                    for line in item["excerpt"].splitlines() if len(line.strip()) > 20}
    corpus_text = "\n".join(corpus_lines).lower()
    copied_examples, copied_literals = [], []
    from acceldoctor.explain.matcher import required_literal
    from acceldoctor.explain.unrecognized import normalize

    for entry in load_knowledge_base():
        copied_examples += [f"{entry.id}: {e}" for e in entry.examples
                            if e.strip() in corpus_lines and normalize(e) != " ".join(e.split())]
        for pattern in entry.patterns:
            literal = required_literal(pattern, min_length=20)
            if literal is not None and literal.lower() in corpus_text and INSTANCE_SPECIFIC.search(literal):
                copied_literals.append(f"{entry.id}: {pattern}")
    assert not copied_examples, "examples copied from the corpus:\n" + "\n".join(copied_examples)
    assert not copied_literals, "patterns carrying corpus text:\n" + "\n".join(copied_literals)
