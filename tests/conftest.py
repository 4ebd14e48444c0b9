import os
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


@pytest.fixture(scope="session")
def healthy_gemm_reports(tmp_path_factory):
    """Four healthy runs' reports, made once for every test that needs a fleet or a baseline of them."""
    folder = tmp_path_factory.mktemp("healthy")
    paths = []
    for i in range(4):
        path = folder / f"healthy-{i}.json"
        proc = run_cli(*GEMM_RUN, "--json", str(path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        paths.append(path)
    return paths
