"""A real SpecSheet with made-up figures, for judging the performance checks against a spec of our choosing."""

import pytest

from acceldoctor.baseline.spec_sheets import SpecSheet


def make_spec_sheet(**figures) -> SpecSheet:
    """A spec sheet for a fake model with the given figures (peak_tflops=..., memory_bandwidth_gbs=..., ...)."""
    return SpecSheet(model="Fake X", vendor="Fake", patterns=["Fake X"], examples=["Fake X"],
                     source="a test spec sheet, not real", **figures)


@pytest.fixture
def spec_sheet():
    """The function `spec_sheet(**figures) -> SpecSheet`."""
    return make_spec_sheet
