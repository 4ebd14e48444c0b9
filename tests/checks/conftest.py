"""Shared helpers for the check tests (test files cannot import each other under --import-mode=importlib)."""

import pytest


def by_dtype(result: dict, name: str = "cases") -> dict:
    """{dtype: value} of the metric `name` in a check result: one entry per dtype it was reported for."""
    return {m["dtype"]: m["value"] for m in result["metrics"] if m["name"] == name}


@pytest.fixture
def metric_by_dtype():
    """The function `metric_by_dtype(result, name="cases") -> {dtype: value}`."""
    return by_dtype
