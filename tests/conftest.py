import pytest


@pytest.fixture(autouse=True)
def _quiet_torch_threads():
    # Two cores on CI: keep in-process checks from oversubscribing alongside worker processes.
    import torch

    torch.set_num_threads(2)
    yield
