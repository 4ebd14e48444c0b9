"""One Markdown page per check and per fault, from their declarations (docs/ and `acceldoctor doc`)."""

from __future__ import annotations

from acceldoctor.checks.registry import CheckSpec
from acceldoctor.checks.tolerances import formula_legend, load_tolerance_files, tolerance, tolerance_about
from acceldoctor.faults.catalog import FAULTS, Fault


def check_markdown(spec: CheckSpec) -> str:
    lines = [
        f"# `{spec.id}` — {spec.title}",
        "",
        f"Category: `{spec.category}` · levels: {spec.levels_text} · time limit: {spec.timeout_s:g} s",
        "",
        "## What it verifies",
        spec.doc.verifies,
        "",
        "## Why it matters",
        spec.doc.why,
        "",
        "## What a failure means",
        spec.doc.failure_means,
        "",
        "## What to do",
        spec.doc.remedy,
    ]
    if spec.tolerances:
        lines += ["", "## Tolerances", ""] + _tolerance_lines(spec)
    if spec.params:
        lines += ["", "## Parameters", "", "| name | default | per level | meaning |", "|---|---|---|---|"]
        for p in spec.params:
            per_level = ", ".join(f"{k}: {v}" for k, v in p.per_level.items()) or "—"
            allowed = [f"one of {', '.join(f'`{c}`' for c in p.choices)}"] if p.choices else []
            allowed += [f"at least {p.minimum:g}"] if p.minimum is not None else []
            allowed += [f"at most {p.maximum:g}"] if p.maximum is not None else []
            limits = f" ({'; '.join(allowed)})" if allowed else ""
            lines.append(f"| `{p.name}` | `{p.default}` | {per_level} | {p.help}{limits} |")
    faults = [f for f in FAULTS.values() if f.caught_by == spec.id]
    if faults:
        lines += ["", "## Self-test", ""]
        lines += [f"- `--inject {f.name}` makes this check report `{f.expected_status}`." for f in faults]
    return "\n".join(lines) + "\n"


def _tolerance_lines(spec: CheckSpec) -> list[str]:
    source = (f"`data/tolerances/{spec.id}.yaml`" if spec.id in load_tolerance_files()
              else "`data/tolerances/`")
    lines = [f"From {source}. {formula_legend()}"]
    if about := tolerance_about(spec.id):
        lines += ["", about.strip()]
    for op in spec.tolerances:
        tol = tolerance(op)
        lines += ["", f"### `{op}`", "", f"`{tol.formula()}`", ""]
        lines += [f"- **Magnitude:** {(tol.magnitude or '|golden| (the default).').strip()}",
                  f"- **Why:** {tol.why.strip()}"]
    return lines


def fault_markdown(fault: Fault) -> str:
    return "\n".join([
        f"# fault `{fault.name}`",
        "",
        fault.summary.strip(),
        "",
        f"Imitates {fault.imitates}. Caught by `{fault.caught_by}` with status `{fault.expected_status}`.",
        "",
        *_try_it(fault),
    ]) + "\n"


def _try_it(fault: Fault) -> list[str]:
    select = f"--select {fault.caught_by}"
    if fault.distributed:
        timeout = " --timeout 20" if fault.expected_status == "timeout" else ""
        return [f"It needs a group of ranks. Try it on the CPU: `acceldoctor check --level standard --nproc "
                f"{fault.ranks_needed} {select} --inject {fault.name}{timeout}`"]
    if not fault.needs_baseline:
        return [f"Try it: `acceldoctor check --inject {fault.name} {select}`"]
    return ["It shows only against a baseline of healthy runs. Try it:", "",
            "```sh",
            f"acceldoctor check --level standard {select} --json healthy.json",
            "acceldoctor baseline create healthy.json -o baseline.json",
            f"acceldoctor check --level standard {select} --baseline baseline.json --inject {fault.name}",
            "```"]
