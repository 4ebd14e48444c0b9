"""`acceldoctor` command line. Verbs and exit codes are contracts (shared/DESIGN.md)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from acceldoctor.cli.baseline_command import baseline_app
from acceldoctor.cli.errors import UsageError, fail_usage
from acceldoctor.cli.portal_commands import portal_app, serve

app = typer.Typer(
    name="acceldoctor",
    help="A doctor for AI accelerators: does this chip compute correctly, and what went wrong when not.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _require_torch() -> None:
    if importlib.util.find_spec("torch") is None:
        raise UsageError("PyTorch is not installed; install your vendor's torch build (or `pip install torch`)")


@app.command()
def devices(
    as_json: Annotated[bool, typer.Option("--json", help="Print the inventory as JSON.")] = False,
) -> None:
    """List every visible device (the CPU included) with memory and software versions."""
    _require_torch()
    from acceldoctor.devices.discovery import list_devices
    from acceldoctor.devices.versions import host_info
    from acceldoctor.report.devices_view import render_devices

    found, host = list_devices(), host_info()
    if as_json:
        payload = {"host": host.model_dump(), "devices": [d.model_dump() for d in found]}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        render_devices(host, found, Console())


@app.command()
def check(
    device: Annotated[str | None, typer.Option(
        "--device", "-d", help="Device to test: cpu, cuda:0, npu:0, xpu:0, mps, a comma list, or all. "
        "Default: the first accelerator, else the CPU.")] = None,
    level: Annotated[str, typer.Option(help="quick, standard or full.")] = "quick",
    select: Annotated[list[str] | None, typer.Option(
        "--select", "-k", help="Only checks whose id matches this glob (repeatable), e.g. 'correctness.*'.")] = None,
    json_path: Annotated[str | None, typer.Option(
        "--json", help="Write the JSON report here as results arrive ('-' prints it to stdout, alone).")] = None,
    inject: Annotated[str | None, typer.Option(
        help="Inject a fault to prove the checks catch it (see `acceldoctor list --faults`).")] = None,
    timeout: Annotated[float | None, typer.Option(
        help="Seconds before a check counts as hung (default: each check's own limit).", min=0.1)] = None,
    seed: Annotated[int, typer.Option(help="Seed for the generated inputs.")] = 0,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Override a check parameter, CHECK.NAME=VALUE (repeatable); see `acceldoctor doc CHECK`.",
    )] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Judge rate and time metrics against this baseline (`acceldoctor baseline create`).",
    )] = None,
    nproc: Annotated[int | None, typer.Option(
        "--nproc", help="Run the interconnect checks on N local ranks, one device each (N CPU ranks on the CPU). "
        "Default: 1. Under torchrun, its ranks are used instead.", min=1)] = None,
    backend: Annotated[str | None, typer.Option(
        "--backend", help="torch.distributed backend for the interconnect checks (default by device: nccl, hccl, "
        "xccl, gloo on the CPU).")] = None,
    upload: Annotated[str | None, typer.Option(
        "--upload", metavar="URL", help="Upload the report to the portal at URL when the run ends.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="ACCELDOCTOR_TOKEN", help="The portal token for --upload.", show_envvar=True)] = None,
) -> None:
    """Run the checks on a device and report, in plain words, what is wrong.

    Exit code: 0 healthy, 1 a problem was found (fail, timeout, crash), 2 usage or tool error (a failed --upload
    included).
    """
    _require_torch()
    upload_to = _upload_target(upload, token, json_path)
    if upload_to is not None and json_path is None:
        import tempfile

        json_path = str(Path(tempfile.mkdtemp(prefix="acceldoctor-")) / "report.json")
    import contextlib

    from acceldoctor.interconnect.group import launched_by_torchrun
    from acceldoctor.runner.pool import WorkerPool

    # The worker imports torch while this process does the same for device discovery: on a small host
    # that overlap is a quarter of a quick run. A torchrun rank runs only the distributed checks: no worker.
    under_torchrun = launched_by_torchrun()
    with contextlib.nullcontext() if under_torchrun else WorkerPool().start() as pool:
        from acceldoctor.cli.check_command import run_check_command

        code = run_check_command(device=device, level=level, select=select or [], json_path=json_path,
                                 inject=inject, timeout=timeout, seed=seed, params=param or [], pool=pool,
                                 baseline_path=baseline, nproc=nproc, backend=backend,
                                 torchrun=under_torchrun)
    if upload_to is not None:
        from acceldoctor.cli.upload_command import upload_check_report

        upload_check_report(json_path, *upload_to)
    raise typer.Exit(code)


def _upload_target(url: str | None, token: str | None, json_path: str | None) -> tuple[str, str] | None:
    """(portal URL, token) for `check --upload`, checked before the run: a typo should not wait for the checks."""
    if url is None:
        return None
    if json_path == "-":
        raise UsageError("--upload sends the report file: give --json PATH (or no --json) instead of --json -")
    from acceldoctor.cli.upload_command import portal_target

    return portal_target(url, token)


@app.command()
def stress(
    duration: Annotated[str, typer.Option(help="How long to burn: 30s, 10m, 1h.")] = "10m",
    device: Annotated[str | None, typer.Option(
        "--device", "-d", help="Devices to burn at once: all, a comma list, or one (default: the first "
        "accelerator, else the CPU); cpu:0,cpu:1,... splits the CPU into workers on their own cores.")] = None,
    json_path: Annotated[str | None, typer.Option(
        "--json", help="Write the JSON report (with the per-interval timeline) here as the run goes.")] = None,
    inject: Annotated[str | None, typer.Option(
        help="Inject a fault to prove the burn catches it (e.g. bitflip, hang-matmul); FAULT@DEVICE for one "
        "device only (bitflip:300@cuda:1).")] = None,
    interval: Annotated[float, typer.Option(help="Seconds per sample.", min=0.2)] = 1.0,
    workload: Annotated[str | None, typer.Option(
        help="Workloads to run, a comma list of gemm, memory, train (default: all).")] = None,
    html: Annotated[str | None, typer.Option(
        "--html", help="Also write the report as one self-contained HTML page with the timeline's plots.")] = None,
) -> None:
    """Burn-in: sustained, self-checking load on every chosen device at once, with drift and hang detection.

    Exit code: as `check` (0 healthy, 1 a problem was found, 2 usage or tool error).
    """
    _require_torch()
    from acceldoctor.cli.stress_command import run_stress_command

    raise typer.Exit(run_stress_command(duration=duration, device=device, json_path=json_path, inject=inject,
                                        interval=interval, workload=workload, html_path=html))


app.add_typer(baseline_app, name="baseline")
app.command()(serve)
app.add_typer(portal_app, name="portal")


@app.command()
def upload(
    files: Annotated[list[Path], typer.Argument(
        metavar="FILE...", help="JSON written by check, stress, explain or compare with --json.")],
    url: Annotated[str, typer.Option(help="The portal, e.g. http://portal.example:8000.")],
    token: Annotated[str | None, typer.Option(
        envvar="ACCELDOCTOR_TOKEN", show_envvar=True, help="An uploader token.")] = None,
    host: Annotated[str | None, typer.Option(
        help="The node to file explain and compare results under (default: this hostname).")] = None,
) -> None:
    """Upload reports to the portal; a file already stored there (same run) is not stored twice.

    Exit code: 0 uploaded, 2 a file is not a report, the portal cannot be reached or refused it.
    """
    from acceldoctor.cli.upload_command import run_upload

    raise typer.Exit(run_upload(files, url, token, host))


@app.command()
def feedback(
    title: Annotated[str, typer.Argument(help="What went wrong, in a few words.")],
    url: Annotated[str, typer.Option(help="The portal, e.g. http://portal.example:8000.")],
    description: Annotated[str, typer.Option(help="More detail: what you did, what you expected.")] = "",
    severity: Annotated[str, typer.Option(help="low, medium, high or critical.")] = "medium",
    attach: Annotated[Path | None, typer.Option(
        help="A report (check, stress, explain, compare JSON) or a log; links the feedback to matching problems.")
    ] = None,
    token: Annotated[str | None, typer.Option(
        envvar="ACCELDOCTOR_TOKEN", show_envvar=True, help="An uploader token.")] = None,
    host: Annotated[str | None, typer.Option(help="Your node's name (default: this hostname).")] = None,
) -> None:
    """File feedback with the portal; it shows which known problems match and how many nodes hit them.

    Exit code: 0 filed, 2 bad input, or the portal cannot be reached or refused it.
    """
    from acceldoctor.cli.upload_command import run_feedback

    raise typer.Exit(run_feedback(title, description, severity, attach, url, token, host))


@app.command()
def explain(
    paths: Annotated[list[Path] | None, typer.Argument(
        metavar="FILE|DIR...", help="Log files (plain or .gz) or folders of them, e.g. every rank's log.")] = None,
    json_path: Annotated[str | None, typer.Option(
        "--json", help="Also write the result as JSON to this path ('-' for stdout only).")] = None,
    list_entries: Annotated[bool, typer.Option("--list", help="List every error the knowledge base knows.")] = False,
) -> None:
    """Read logs and say what happened, why, and what to do; across ranks, name the first cause.

    Exit code: 0 nothing wrong found, 1 problems found, 2 usage error or nothing could be read.
    """
    from acceldoctor.cli.explain_command import run_explain_command, run_explain_list

    if list_entries:
        run_explain_list()
        raise typer.Exit(0)
    raise typer.Exit(run_explain_command(paths or [], json_path))


@app.command()
def bundle(
    output: Annotated[Path, typer.Option(
        "--output", "-o", metavar="FILE.tar.gz", help="Write the bundle here (.tar.gz or .tgz).")],
    logs: Annotated[list[Path] | None, typer.Argument(
        metavar="[LOGS]...", help="Log files (plain or .gz) or folders of them to include, redacted.")] = None,
    report: Annotated[list[Path] | None, typer.Option(
        "--report", help="An acceldoctor report to include (repeatable); default: the 20 newest in this folder.")
    ] = None,
    max_log_mb: Annotated[float, typer.Option(
        "--max-log-mb", help="Keep at most the last N MiB of each log.")] = 50.0,
) -> None:
    """Pack what a vendor engineer asks for first into one archive, secrets redacted (see docs/bundle.md).

    Versions, pip freeze, devices, environment, vendor tool outputs, kernel log, reports, the logs and their
    explanation. Exit code: 0 written, 2 usage error or the bundle could not be written.
    """
    from acceldoctor.cli.bundle_command import run_bundle_command

    raise typer.Exit(run_bundle_command(output, logs or [], report, max_log_mb))


@app.command()
def diagnose(
    reports: Annotated[list[Path], typer.Argument(
        metavar="REPORT...", help="JSON reports of `acceldoctor check` runs on many nodes (one or more per node).")],
    baseline: Annotated[Path | None, typer.Option(
        "--baseline", help="Also judge each device against this baseline (`acceldoctor baseline create`).")] = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="A rules file to use instead of the packaged one (see docs/diagnose_rules.md).")] = None,
    json_path: Annotated[str | None, typer.Option(
        "--json", help="Also write the diagnosis as JSON to this path ('-' for stdout only).")] = None,
) -> None:
    """Single out the defective nodes and devices of a fleet from their reports, naming the rule each broke.

    Devices are compared with others of the same model and software versions. Exit code: 0 no defective node,
    1 a node is defective (a fail rule matched), 2 usage error.
    """
    from acceldoctor.cli.diagnose_command import run_diagnose_command

    raise typer.Exit(run_diagnose_command(reports, baseline, rules, json_path))


@app.command()
def compare(
    dumps: Annotated[list[str] | None, typer.Argument(
        metavar="[DUMP_A DUMP_B]", help="Two folders written by acceldoctor.record(...).")] = None,
    model: Annotated[str | None, typer.Option(
        help="One-command mode: module:function (or file.py:function) returning (model, inputs) for a seed; "
        "both runs are built from it with identical weights and inputs.")] = None,
    devices: Annotated[str, typer.Option(help="One-command mode: the two devices, e.g. cpu,cuda:0.")] = "cpu,cpu",
    dtypes: Annotated[str, typer.Option(
        help="One-command mode: the two dtypes, e.g. float32,bfloat16 (one value for both).")] = "float32",
    steps: Annotated[int, typer.Option(help="One-command mode: training steps to record.")] = 1,
    level: Annotated[str, typer.Option(help="One-command mode: record every module call or every op.")] = "module",
    seed: Annotated[int, typer.Option(help="One-command mode: the seed the model and inputs are built with.")] = 0,
    inject: Annotated[str | None, typer.Option(
        help="One-command mode: a fault in one run to prove the comparison finds it: FAULT@a or FAULT@b.")] = None,
    keep: Annotated[str | None, typer.Option(
        help="One-command mode: keep the two dumps in this folder (default: a temporary folder).")] = None,
    json_path: Annotated[str | None, typer.Option(
        "--json", help="Also write the comparison as JSON to this path ('-' for stdout only).")] = None,
    first_nonfinite: Annotated[bool, typer.Option(
        "--first-nonfinite", help="Hunt NaN: exit 1 when a call made NaN/Inf from finite inputs, and name it.")]
    = False,
    html: Annotated[str | None, typer.Option(
        "--html", metavar="OUT", help="Also write the comparison as one self-contained HTML page.")] = None,
    tolerance: Annotated[float, typer.Option(
        help="Machine epsilons of the less precise dtype a tensor may differ by (relative L2).")] = 32.0,
) -> None:
    """Find the first operation where two runs of a model part, and whether that is rounding or a wrong device.

    Exit code: 0 equivalent, 1 divergent (or, with --first-nonfinite, NaN/Inf found), 2 usage error.
    """
    _require_torch()
    from acceldoctor.cli.compare_command import run_compare_command

    raise typer.Exit(run_compare_command(dumps=dumps or [], model=model, devices=devices, dtypes=dtypes, steps=steps,
                                         level=level, seed=seed, inject=inject, keep=keep, json_path=json_path,
                                         first_nonfinite=first_nonfinite, tolerance=tolerance, html_path=html))


@app.command("report")
def report_(
    path: Annotated[Path, typer.Argument(
        metavar="FILE", help="A JSON report of `acceldoctor check` or `acceldoctor stress` (from --json).")],
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="OUT", help="Write the report as one self-contained HTML page here (with the stress "
        "timeline's charts), to open offline in any browser; '-' prints it to stdout.")] = None,
) -> None:
    """Show a saved report: its summary at the terminal, or with --html a page with tables and charts.

    Exit code: 0 shown or written (what the report found is in it), 2 FILE is not a report or OUT cannot be written.
    """
    from acceldoctor.cli.report_command import run_report_command

    raise typer.Exit(run_report_command(path, html))


@app.command("list")
def list_(
    faults: Annotated[bool, typer.Option("--faults", help="List the injectable faults instead.")] = False,
) -> None:
    """List every check (or every injectable fault) with the levels it runs at."""
    _require_torch()
    from acceldoctor.cli.docs_view import render_check_list, render_fault_list

    (render_fault_list if faults else render_check_list)(Console())


@app.command()
def doc(check_id: Annotated[str, typer.Argument(metavar="ID", help="A check id or fault name.")]) -> None:
    """Show what a check verifies, why it matters, what a failure means and what to do."""
    _require_torch()
    from acceldoctor.cli.docs_view import render_doc

    render_doc(check_id, Console())


def _is_click_usage_error(exc: BaseException) -> bool:
    # typer may bundle its own copy of click, so match the interface, not the class.
    return callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        fail_usage(str(exc), code=exc.exit_code)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        fail_usage("interrupted", code=130)
    except Exception as exc:
        if _is_click_usage_error(exc):
            fail_usage(exc.format_message())
        if type(exc).__name__ == "Abort":  # click's Ctrl-C at a prompt
            fail_usage("interrupted", code=130)
        fail_usage(f"internal error: {type(exc).__name__}: {exc}")
    raise SystemExit(code if isinstance(code, int) else 0)
