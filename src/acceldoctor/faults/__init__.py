"""Fault injection for self-test: prove each check can fail when the device misbehaves.

    from acceldoctor.faults import injected
    with injected("softmax-nan"):
        ...  # torch ops on any device now misbehave as the fault describes

Reference computations (the float64 golden and the comparisons) run inside `suspended()` so that a
fault only ever touches the device under test, as a real device fault would.
"""

from acceldoctor.faults.mode import injected, suspended

__all__ = ["injected", "suspended"]
