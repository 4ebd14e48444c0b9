"""compare: record what a model computes (per module or per op: statistics, optionally tensors), align two
recordings and find the first divergence.

Recording side: `acceldoctor.record` (defined in record.py; not re-exported here, where `record` is that
submodule), the dump format and its reader (`load_dump`, `Dump`, `Record`,
`DumpError` in dump.py), replaying a recorded op call (`decode_call`, `resolve_op` in callargs.py). Names are
imported lazily so that `import acceldoctor.compare.dump` does not pull in the recorder.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "load_dump": "acceldoctor.compare.dump",
    "Dump": "acceldoctor.compare.dump",
    "DumpError": "acceldoctor.compare.dump",
    "Record": "acceldoctor.compare.dump",
    "decode_call": "acceldoctor.compare.callargs",
    "resolve_op": "acceldoctor.compare.callargs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
