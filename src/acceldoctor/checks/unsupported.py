"""Tell "the device does not offer this op or dtype" apart from "the op failed"."""

from __future__ import annotations

import re

_UNSUPPORTED = re.compile(
    r"not implemented|not supported|unsupported|does not support|doesn't support|only supported|"
    r"could not run '|no kernel|not available", re.IGNORECASE)


# A runtime error of the device itself ("CUDA error: operation not supported") is a failure, never a gap.
_DEVICE_RUNTIME_ERROR = re.compile(r"\b(CUDA|HIP|XPU|NPU|ACL|MPS)\b[^\n]*error|error code|device-side assert",
                                   re.IGNORECASE)


def is_unsupported(exc: BaseException) -> bool:
    """An error that says the device lacks the op or dtype, as opposed to one the op should not raise."""
    if isinstance(exc, NotImplementedError):
        return True
    text = str(exc)
    return bool(_UNSUPPORTED.search(text)) and not _DEVICE_RUNTIME_ERROR.search(text)
