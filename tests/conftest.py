import json
import os
import statistics
import subprocess
import sys

import pytest


@pytest.fixture(autouse=True)
def _quiet_torch_threads():
    # Two cores on CI: keep in-process checks from oversubscribing alongside worker processes.
    import torch

    torch.set_num_threads(2)
    yield


def run_cli(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `acceldoctor ARGS` as a user would, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "acceldoctor", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture
def cli():
    return run_cli


# performance.gemm at one size, as the baseline and diagnose tests run it on every "node".
# Longer than the default measurement (15 repeats of at least 0.1 s): the median then spans seconds, so one stall of
# this shared 2-core host cannot move a whole run (the noise is measured in data/baseline_rules.yaml).
GEMM_RUN = ("check", "--level", "standard", "--select", "performance.gemm", "--param", "performance.gemm.sizes=[256]",
            "--param", "performance.gemm.repeats=15", "--param", "performance.gemm.min_repeat_s=0.1")


@pytest.fixture(scope="session")
def gemm_run():
    return GEMM_RUN


def _gemm_figures(path) -> dict[str, float]:
    report = json.loads(path.read_text())
    return {f"{m['dtype']}": m["value"] for r in report["results"] for m in r.get("metrics", [])
            if m.get("name") == "tflops"}


def _disagreeing_run(paths) -> int | None:
    """Index of the run whose GEMM figure strays furthest (over 8%) from the median of all runs, if one does."""
    figures = [_gemm_figures(path) for path in paths]
    worst, worst_gap = None, 0.08
    for dtype in figures[0]:
        values = [f[dtype] for f in figures]
        median = statistics.median(values)
        for i, value in enumerate(values):
            if abs(value - median) / median > worst_gap:
                worst, worst_gap = i, abs(value - median) / median
    return worst


@pytest.fixture(scope="session")
def healthy_gemm_reports(tmp_path_factory):
    """Four healthy runs' reports, made once for every test that needs a fleet or a baseline of them.

    The tests treat these as four identical healthy nodes, but all four are measured on one shared CI host: a
    neighbour can slow one whole run by 30% (seen on CI). A run that strays over 8% from the others (below the
    10% the fleet-outlier rule needs) is measured again, as a technician would re-run a node that looks off.
    """
    folder = tmp_path_factory.mktemp("healthy")

    def measure(path):
        proc = run_cli(*GEMM_RUN, "--json", str(path))
        assert proc.returncode == 0, proc.stdout + proc.stderr

    paths = [folder / f"healthy-{i}.json" for i in range(4)]
    for path in paths:
        measure(path)
    for _ in range(4):
        stray = _disagreeing_run(paths)
        if stray is None:
            break
        measure(paths[stray])
    return paths
