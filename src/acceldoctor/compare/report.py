"""A comparison as the Compare JSON of DESIGN.md, and as a table a person can read."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from acceldoctor.compare.judge import Comparison, KeyComparison, call_of

SCHEMA = "acceldoctor.compare/1"
SHOWN_UNMATCHED = 10


def _json_safe(value):
    """JSON has no NaN or infinity: write them as the strings "nan", "inf", "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def comparison_json(comparison: Comparison, runs: dict[str, dict]) -> dict:
    first = comparison.first_divergence
    first_json = first.as_json() if first else None
    if first_json is not None and comparison.replay is not None:
        first_json["replay"] = comparison.replay
        first_json["verdict"] = f"{first_json['verdict']}; {comparison.replay['verdict']}"
    return _json_safe({
        "schema": SCHEMA,
        "equivalent": comparison.equivalent,
        "runs": runs,
        "first_divergence": first_json,
        "sources": [k.key for k in comparison.sources()],
        "divergences": [k.as_json() for k in comparison.divergences],
        "unmatched": {"only_in_a": comparison.only_a, "only_in_b": comparison.only_b},
        "compared_keys": len(comparison.keys),
        "first_nonfinite": comparison.first_nonfinite,
        "losses": comparison.losses,
    })


def _metrics_text(k: KeyComparison) -> str:
    parts = [f"rel. L2 {k.error:.3g}" if math.isfinite(k.error) else "rel. L2 inf", f"{k.ratio:.3g}x tol."]
    if k.from_tensors:
        parts += [f"cos {k.metrics['cosine']:.6f}", f"max abs {k.metrics['max_abs_error']:.3g}",
                  f"{k.metrics['share_beyond_tolerance']:.1%} beyond"]
    return ", ".join(parts)


def _run_precision(run: dict) -> str:
    """`cuda:0, float32`, or where the run computed some calls in less, `cuda:0, float32 (matmuls in tf32)`."""
    return f"{run.get('device', '?')}, {run.get('precision') or run.get('dtype', '?')}"


def render_comparison(comparison: Comparison, runs: dict[str, dict], console: Console) -> None:
    a, b = runs["a"], runs["b"]
    console.print(f"A: {escape(a['path'])} ({escape(_run_precision(a))})  B: {escape(b['path'])} "
                  f"({escape(_run_precision(b))}); "
                  f"{len(comparison.keys)} keys compared", highlight=False)
    sources = comparison.sources()
    if sources:
        table = Table(title="where the runs part (first divergence, then where new error enters)", expand=True)
        for column in ("#", "key", "direction", "how far apart", "verdict"):
            table.add_column(column, ratio=3 if column in ("key", "verdict") else None)
        for position, k in enumerate(sources, 1):
            table.add_row(str(position), escape(k.key), k.direction, escape(_metrics_text(k)), escape(k.verdict()))
        console.print(table)
    if comparison.replay is not None:
        console.print(f"who is wrong: {escape(comparison.replay['verdict'])}.", highlight=False)
    for side, found in (comparison.first_nonfinite or {}).items():
        if found:
            console.print(f"first NaN/Inf in run {side.upper()}: {escape(found['key'])} made {found['nan']} NaN and "
                          f"{found['inf']} Inf from finite inputs.", highlight=False)
    if comparison.losses:
        _render_losses(comparison.losses, console)
    for label, keys in (("only in A", comparison.only_a), ("only in B", comparison.only_b)):
        calls = list(dict.fromkeys(call_of(key) for key in keys))
        if calls:
            shown = ", ".join(calls[:SHOWN_UNMATCHED]) + (f" and {len(calls) - SHOWN_UNMATCHED} more"
                                                          if len(calls) > SHOWN_UNMATCHED else "")
            console.print(f"{len(calls)} call(s) {label}: {escape(shown)}", highlight=False)
    first = comparison.first_divergence
    if first is None:
        console.print("[green]equivalent[/]: every key agrees within the rounding of its dtypes.")
    else:
        console.print(f"[red]divergent[/]: first at {escape(first.key)} ({len(comparison.divergences)} diverging "
                      "key(s) in all).")


def _render_losses(losses: dict, console: Console) -> None:
    table = Table(title="loss per step")
    for column in ("step", "A", "B", "relative difference"):
        table.add_column(column, justify="right")
    for step, (x, y) in enumerate(zip(losses["a"], losses["b"], strict=False)):
        rel = abs(x - y) / max(abs(x), abs(y), 1e-30) if math.isfinite(x) and math.isfinite(y) else math.inf
        table.add_row(str(step), f"{x:.6g}", f"{y:.6g}", f"{rel:.2e}")
    console.print(table)


def render_comparison_html(document: dict) -> str:
    """The comparison as one self-contained page (the report page's styles; no script, no URL)."""
    from markupsafe import Markup

    from acceldoctor import __version__
    from acceldoctor.report.html import report_css, template_environment

    environment = template_environment()
    environment.filters["zip"] = lambda a, b: list(zip(a, b, strict=False))
    by_key = {k["key"]: k for k in document["divergences"]}
    sources = [by_key[key] for key in document["sources"] if key in by_key]
    only = document["unmatched"]
    unmatched = [(label, list(dict.fromkeys(call_of(key) for key in keys)))
                 for label, keys in (("A", only["only_in_a"]), ("B", only["only_in_b"])) if keys]
    return environment.get_template("compare.html.j2").render(
        doc=document, sources=sources, unmatched=unmatched, css=Markup(report_css()), version=__version__)
