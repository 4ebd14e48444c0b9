"""Checks declare themselves with `@register_check`; the registry finds them by importing the packages.

Modelled on SuperBench's benchmark registry: a check module is self-describing (id, levels, parameters,
documentation), so `acceldoctor list`, `acceldoctor doc` and docs/checks/ all read the same declaration.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acceldoctor.checks.context import CheckContext, CheckOutcome

LEVELS = ("quick", "standard", "full")
CATEGORY_PACKAGES = ("correctness", "determinism", "environment", "interconnect", "performance", "stability")


@dataclass(frozen=True)
class CheckDoc:
    verifies: str
    why: str
    failure_means: str
    remedy: str


@dataclass(frozen=True)
class Param:
    """A tunable of a check; `per_level` overrides the default for a level."""

    name: str
    default: Any
    help: str
    per_level: dict[str, Any] = field(default_factory=dict)
    choices: tuple[Any, ...] = ()  # the only values allowed (or extra ones, e.g. 'auto' for a number)
    minimum: float | None = None
    maximum: float | None = None

    def value_for(self, level: str) -> Any:
        return self.per_level.get(level, self.default)


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    levels: tuple[str, ...]
    doc: CheckDoc
    run: Callable[[CheckContext], CheckOutcome]
    params: tuple[Param, ...] = ()
    timeout_s: float = 120.0
    tolerances: tuple[str, ...] = ()  # entries of data/tolerances/ this check judges by
    module: str = ""
    # A distributed check runs on every rank of a torch.distributed group at once (see runner/ranks.py), not in
    # the single-device worker; with fewer than `min_ranks` ranks it is skipped.
    distributed: bool = False
    min_ranks: int = 1

    @property
    def levels_text(self) -> str:
        """The levels in words; a check of no level runs only under `acceldoctor stress`."""
        return ", ".join(self.levels) or "`acceldoctor stress` only"

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]

    def params_for(self, level: str) -> dict[str, Any]:
        return {p.name: p.value_for(level) for p in self.params}


_REGISTRY: dict[str, CheckSpec] = {}


def register_check(
    *,
    id: str,
    title: str,
    levels: tuple[str, ...],
    doc: CheckDoc,
    params: tuple[Param, ...] = (),
    timeout_s: float = 120.0,
    tolerances: tuple[str, ...] = (),
    distributed: bool = False,
    min_ranks: int = 1,
) -> Callable[[Callable], Callable]:
    category, _, name = id.partition(".")
    if not name or id != id.lower():
        raise ValueError(f"check id {id!r} must be '<category>.<name>' in lower case")
    if unknown := set(levels) - set(LEVELS):
        raise ValueError(f"check {id}: unknown levels {sorted(unknown)}")

    def decorate(fn: Callable) -> Callable:
        if id in _REGISTRY and _REGISTRY[id].module != fn.__module__:
            raise ValueError(f"check id {id} registered twice ({_REGISTRY[id].module}, {fn.__module__})")
        _REGISTRY[id] = CheckSpec(
            id=id, title=title, levels=tuple(levels), doc=doc, run=fn, params=tuple(params),
            timeout_s=timeout_s, tolerances=tuple(tolerances), module=fn.__module__, distributed=distributed,
            min_ranks=min_ranks,
        )
        return fn

    return decorate


def _import_check_modules() -> None:
    for category in CATEGORY_PACKAGES:
        package = importlib.import_module(f"acceldoctor.checks.{category}")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            try:
                importlib.import_module(f"{package.__name__}.{info.name}")
            except Exception as exc:  # e.g. a torch API this (vendor) torch lacks: that check errors, not all
                _register_unloadable(f"{category}.{info.name}", f"{package.__name__}.{info.name}", exc)


def _register_unloadable(check_id: str, module: str, exc: Exception) -> None:
    """Stand in for a check module that failed to import: it reports `error` with the reason when run."""
    from acceldoctor.messages import describe_exception

    reason = describe_exception(exc, where=True)

    def report_import_failure(ctx):
        raise RuntimeError(f"the check module {module} could not be loaded: {reason}")

    _REGISTRY.setdefault(check_id, CheckSpec(
        id=check_id, title=f"(could not be loaded: {reason})", levels=LEVELS,
        doc=CheckDoc(verifies="Unknown: the module failed to import.", why=reason,
                     failure_means="This check could not run on this installation.",
                     remedy="Check that the installed torch meets acceldoctor's requirement, then report the error."),
        run=report_import_failure, module=module))


_imported = False


def all_checks() -> dict[str, CheckSpec]:
    global _imported
    if not _imported:  # a test may have imported one check module directly: still import the rest
        _import_check_modules()
        _imported = True
    return dict(sorted(_REGISTRY.items()))


def get_check(check_id: str) -> CheckSpec:
    checks = all_checks()
    if check_id not in checks:
        raise KeyError(check_id)
    return checks[check_id]


def select_checks(level: str, patterns: list[str] | None = None) -> list[CheckSpec]:
    """Checks of `level` whose id matches any glob in `patterns` (all when none are given).

    Levels are cumulative in the sense that each check lists every level it belongs to.
    A pattern that matches no check at all is a usage error (raises LookupError).
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    checks = all_checks()
    chosen = [spec for spec in checks.values() if level in spec.levels]
    if patterns:
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(cid, pattern) for cid in checks):
                raise LookupError(f"no check matches {pattern!r}; see `acceldoctor list`")
        chosen = [s for s in chosen if any(fnmatch.fnmatchcase(s.id, p) for p in patterns)]
    return chosen
