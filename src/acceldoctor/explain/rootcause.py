"""Which finding is the first cause and which are consequences, across the logs of all ranks of a job.

A collective that times out on many ranks is nearly always waiting for one rank that crashed, hung or lost its
link first. So: an error that is not a timeout (nor marked `secondary`, like a peer closing its connection) is a
cause before any timeout is; among causes, the earliest (by
the logs' own timestamps) wins; when only timeouts were logged, a rank that logged none is the suspect (it hung
or died without a word); when every rank timed out, the earliest timeout names the rank that noticed first.
"""

from __future__ import annotations

from dataclasses import dataclass

from acceldoctor.explain.scan import Finding

CONSEQUENCE_CATEGORIES = frozenset({"collective_timeout"})
SERIOUS = frozenset({"error", "critical"})
# When times cannot be compared, how likely a category is to be the first cause (lower: more likely).
_CAUSE_ORDER = ("hardware_fault", "device_side_assert", "illegal_memory_access", "device_oom",
                "host_resource_exhausted", "numeric_error", "device_unavailable", "internal_error", "network_error",
                "hang")


@dataclass(frozen=True)
class RootCause:
    finding: Finding | None  # None when the suspect is a rank that logged nothing
    rank: int | None
    reason: str


def _is_consequence(finding: Finding) -> bool:
    return finding.entry.category in CONSEQUENCE_CATEGORIES or finding.entry.secondary


def _where(finding: Finding) -> str:
    return f"rank {finding.rank}" if finding.rank is not None else finding.file


def _earliest(findings: list[Finding]) -> tuple[Finding, bool]:
    """The earliest finding and whether that was decided by comparable timestamps."""
    timed = [f for f in findings if f.time is not None]
    kinds = {f.time.kind for f in timed}
    if len(timed) == len(findings) and len(kinds) == 1:
        return min(findings, key=lambda f: (f.time.seconds, f.file, f.line)), True

    def likelihood(f: Finding) -> tuple[int, int, str, int]:
        category = f.entry.category
        order = _CAUSE_ORDER.index(category) if category in _CAUSE_ORDER else len(_CAUSE_ORDER)
        return (0 if f.entry.severity == "critical" else 1, order, f.file, f.line)

    return min(findings, key=likelihood), False


def find_root_cause(findings: list[Finding], ranks_seen: set[int]) -> RootCause | None:
    serious = [f for f in findings if f.entry.severity in SERIOUS]
    if not serious:
        return None
    timeouts = [f for f in serious if _is_consequence(f)]
    causes = [f for f in serious if not _is_consequence(f)]
    timed_out_ranks = sorted({f.rank for f in timeouts if f.rank is not None})
    if causes:
        first, by_time = _earliest(causes)
        why = "is the earliest error that is not a timeout" if by_time and len(causes) > 1 else \
            "is the only kind of error that is not a timeout" if len({f.entry.id for f in causes}) == 1 else \
            "is the most likely first cause among the errors that are not timeouts (the logs' times cannot be compared)"
        reason = f"{first.entry.title} on {_where(first)} {why}"
        if timed_out_ranks:
            others = [r for r in timed_out_ranks if r != first.rank]
            if others:
                reason += (f"; the collective timeouts on rank(s) {', '.join(map(str, others))} followed, waiting for "
                           f"{_where(first)}")
        return RootCause(first, first.rank, reason + ".")
    silent = sorted(ranks_seen - set(timed_out_ranks))
    if timed_out_ranks and silent:
        ranks = ", ".join(map(str, silent))
        return RootCause(None, silent[0], f"Rank(s) {', '.join(map(str, timed_out_ranks))} timed out in a collective "
                                          f"while rank(s) {ranks} logged no timeout and no error: the suspect is "
                                          f"rank {silent[0]}, which likely hung or died before it could log one.")
    first, by_time = _earliest(timeouts)
    how = "timed out first" if by_time else "timed out (the logs' times cannot be compared)"
    return RootCause(first, first.rank, f"Only collective timeouts were logged and {_where(first)} {how}; the cause "
                                        f"is outside these logs: check that rank's device and link "
                                        f"(`acceldoctor check` on its node, the kernel log for Xid or link errors).")
