"""acceldoctor: a vendor-neutral doctor for AI accelerators."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `acceldoctor.record(model, path)` without making `import acceldoctor` import torch.
    if name == "record":
        from acceldoctor.compare.record import record

        return record
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
