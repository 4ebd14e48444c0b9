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
