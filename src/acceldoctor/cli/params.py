"""Parse `--param CHECK.NAME=VALUE` into per-check parameter overrides, validated against declarations."""

from __future__ import annotations

from typing import Any

import yaml

from acceldoctor.checks.registry import CheckSpec, Param
from acceldoctor.cli.errors import UsageError


def _coerce(raw: str, param: Param, where: str) -> Any:
    default = param.default
    if raw in {str(c) for c in param.choices}:
        return next(c for c in param.choices if str(c) == raw)
    # A word default with numeric bounds ("auto", else a number) takes numbers too, checked against the bounds.
    numeric = isinstance(default, str) and (param.minimum is not None or param.maximum is not None)
    if param.choices and isinstance(default, str) and not numeric:
        raise UsageError(f"--param {where}: choose one of {', '.join(map(str, param.choices))}; got {raw!r}")
    if numeric:
        default = float(param.minimum if param.minimum is not None else param.maximum)
    if isinstance(default, str) or default is None:
        return raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise UsageError(f"--param {where}: cannot read {raw!r}") from None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(default, int) and float(value).is_integer():
            value = int(value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        extra = f" or one of {', '.join(map(str, param.choices))}" if param.choices else ""
        raise UsageError(f"--param {where}: expected a {type(default).__name__} like {default!r}{extra}, "
                         f"got {raw!r}")
    if isinstance(value, (int, float)):
        if param.minimum is not None and value < param.minimum:
            raise UsageError(f"--param {where}: must be at least {param.minimum:g}; got {raw}")
        if param.maximum is not None and value > param.maximum:
            raise UsageError(f"--param {where}: must be at most {param.maximum:g}; got {raw}")
    return value


def parse_param_overrides(items: list[str], checks: dict[str, CheckSpec]) -> dict[str, dict[str, Any]]:
    """`["correctness.opinfo_sweep.ops=add,mul"]` -> `{"correctness.opinfo_sweep": {"ops": "add,mul"}}`."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        check_id, _, name = key.strip().rpartition(".")
        if not sep or not check_id or not name:
            raise UsageError(f"--param takes CHECK.NAME=VALUE, e.g. correctness.opinfo_sweep.ops=add; got {item!r}")
        if check_id not in checks:
            raise UsageError(f"--param {key}: no check is called {check_id!r}; see `acceldoctor list`")
        declared = {p.name: p for p in checks[check_id].params}
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise UsageError(f"--param {key}: {check_id} has no parameter {name!r} (it has: {known})")
        overrides.setdefault(check_id, {})[name] = _coerce(raw.strip(), declared[name], key)
    return overrides
