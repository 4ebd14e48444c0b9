"""Storing an upload: the node and its devices, the report verbatim, its results and metrics, and its events grouped
into problems. One transaction; the caller commits before answering, so an acknowledged upload is stored.

Rows that concurrent uploads share (a node, a device, a problem, a sighting) are written with INSERT ... ON CONFLICT
and counters are incremented in SQL, in a fixed order (by key), so that two uploads neither lose an increment nor
deadlock. An upload whose run_id is already stored stores nothing (a retried upload), and neither does one whose
run_id retention deleted (expired_reports): its events are still counted in its problems.

A node's clock is believed up to the time the server received the report (plus an allowed skew): a report dated
ahead would otherwise stay its node's latest and its problems' last seen until that date.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, case, cast, insert, literal, null, select, union_all, update
from sqlalchemy.orm import Session

from acceldoctor.portal.db.models import (
    Device,
    Event,
    ExpiredReport,
    Node,
    Problem,
    ResultMetric,
    ResultRow,
    Sighting,
    StoredReport,
    UTCDateTime,
    utcnow,
)
from acceldoctor.portal.documents import CompareUpload, ExplainUpload, ReportUpload, kind_of
from acceldoctor.portal.grouping import EventDraft, events_of
from acceldoctor.portal.settings import DEFAULT_MAX_CLOCK_SKEW_S
from acceldoctor.portal.upsert import insert_for

log = logging.getLogger("acceldoctor.portal")

Document = ReportUpload | ExplainUpload | CompareUpload
# A bulk ORM insert leaves a None value's column out of that row's INSERT, so rows differing in which values are None
# (a metric without a threshold) would split into one statement each: hundreds per report. NULLs keep one batch.
ALL_COLUMNS = {"render_nulls": True}


class IngestError(ValueError):
    """The upload is well-formed but cannot be stored as it is (e.g. an explain result without a host)."""


class RunIdTaken(IngestError):
    """Another document was received under this run_id: a retry is the same document, this is not."""


# Ids the portal derives for explain results and comparisons: a report may not take one in advance.
DERIVED_PREFIXES = ("explain-", "compare-")
MAX_HOSTNAME = 255  # nodes.hostname


@dataclass
class ProblemTouched:
    id: int
    fingerprint: str
    title: str
    status: str
    new: bool
    events: int


@dataclass
class IngestOutcome:
    run_id: str
    kind: str
    host: str
    stored: bool  # False: this run_id was received before, nothing was stored now
    expired_at: datetime | None = None  # when retention deleted this run_id, received before (then stored is False)
    results: int = 0
    metrics: int = 0
    events: int = 0
    problems: list[ProblemTouched] = field(default_factory=list)


def canonical_json(document: Document) -> str:
    """The document as stored and hashed: keys sorted, NaN and infinities as null (JSON has none)."""
    plain = json.loads(document.model_dump_json(by_alias=True))
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _unaddressable(value: str) -> str | None:
    """Why a run id or hostname could not be read back as the one path segment of /api/v1/reports/{run_id},
    /api/v1/nodes/{hostname} and their pages; None when it can. Real ones always can (a uuid4 hex; the kernel's
    hostname): a report edited by hand or a slip in `upload --host` cannot, and is refused rather than stored where
    nobody can open it."""
    if "/" in value:  # even sent as %2F: the server decodes the path before it routes it
        return "holds a '/', which cannot be part of a URL path segment"
    if value in (".", ".."):
        return "is a dot segment, which URLs resolve away"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "holds a control character"
    return None


def _check_hostname(hostname: str, field: str) -> None:
    reason = "is empty" if not hostname.strip() else _unaddressable(hostname)
    if reason is None and len(hostname) > MAX_HOSTNAME:
        reason = f"is longer than {MAX_HOSTNAME} characters"
    if reason is not None:
        raise IngestError(f"{field} {hostname[:100]!r} {reason}; nothing was stored")


def identify(document: Document, host: str | None) -> tuple[str, str]:
    """(run_id, host). Explain and compare documents have neither: the client names its host, and the id is the hash
    of host and content, so a retried upload has the same id and the same result from two nodes counts twice."""
    if isinstance(document, ReportUpload):
        if document.run_id.startswith(DERIVED_PREFIXES):
            raise IngestError(f"run_id {document.run_id!r} starts like the ids the portal gives explain results and "
                              "comparisons; a report's run_id may not")
        if (reason := _unaddressable(document.run_id)) is not None:
            raise IngestError(f"run_id {document.run_id!r} {reason}; nothing was stored")
        _check_hostname(document.host.hostname, "host.hostname")
        return document.run_id, document.host.hostname
    host = (host or "").strip()
    if not host:
        raise IngestError(f"uploading {kind_of(document)} results needs the node's hostname: add ?host=HOSTNAME "
                          "(acceldoctor upload adds it)")
    _check_hostname(host, "the host parameter")
    digest = hashlib.sha256(f"{host}\n{canonical_json(document)}".encode()).hexdigest()
    return f"{kind_of(document)}-{digest[:32]}", host


def _received_before(session: Session, run_id: str) -> tuple[str, datetime | None] | None:
    """(content sha256, when retention deleted it or None) of this run_id if it was received before; one query."""
    stored = select(StoredReport.content_sha256, cast(null(), UTCDateTime()).label("expired_at")) \
        .where(StoredReport.run_id == run_id)
    expired = select(ExpiredReport.content_sha256, ExpiredReport.deleted_at).where(ExpiredReport.run_id == run_id)
    row = session.execute(union_all(stored, expired).limit(1)).first()
    return None if row is None else (row[0], row[1])


def believable_times(started: datetime | None, finished: datetime | None, received: datetime,
                     max_skew: timedelta) -> tuple[datetime | None, datetime | None]:
    """A node's start and finish times, unless the later one is after the server received the report plus the
    allowed skew: then both move back together until it is the receive time (the latest the run can truly have
    ended), so the run keeps its length and never ends before it starts. The stored document keeps what the node
    said."""
    latest = max((t for t in (started, finished) if t is not None), default=None)
    if latest is None or latest <= received + max_skew:
        return started, finished
    ahead = latest - received
    return (started - ahead if started else None), (finished - ahead if finished else None)


def ingest(session: Session, document: Document, host: str | None = None, now: datetime | None = None,
           max_clock_skew: timedelta = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_S)) -> IngestOutcome:
    now = now or utcnow()
    run_id, hostname = identify(document, host)
    kind = kind_of(document)
    canonical = canonical_json(document)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    before = _received_before(session, run_id)
    if before is not None:
        stored_digest, expired_at = before
        if stored_digest != digest:
            where = "was stored (and has since expired)" if expired_at else "is already stored"
            raise RunIdTaken(f"another document {where} as run_id {run_id!r}; a retried upload is the same document "
                             "(run ids are unique per run)")
        return IngestOutcome(run_id, kind, hostname, stored=False, expired_at=expired_at)
    node_id = _upsert_node(session, hostname, document, now)
    report = isinstance(document, ReportUpload)
    if report:
        _upsert_devices(session, node_id, document, now)
    claimed = (parse_time(document.started_at), parse_time(document.finished_at)) if report else (None, None)
    started, finished = believable_times(*claimed, now, max_clock_skew)
    if (started, finished) != claimed:
        log.warning("clock ahead", extra={"fields": {"run_id": run_id, "host": hostname,
                                                     "started_at": document.started_at,
                                                     "finished_at": document.finished_at}})
    started = started or now
    inserted = session.execute(
        insert_for(session, StoredReport).values(
            run_id=run_id, kind=kind, schema=document.schema_, node_id=node_id, started_at=started,
            finished_at=finished, received_at=now,
            exit_code=_exit_code(document), summary=document.summary if report else None,
            result_count=len(document.results) if report else 0, event_count=0,
            content_sha256=digest, document=canonical,
        ).on_conflict_do_nothing(index_elements=["run_id"]).returning(StoredReport.id)).scalar()
    if inserted is None:  # the same run_id committed by a concurrent upload meanwhile
        session.rollback()
        return IngestOutcome(run_id, kind, hostname, stored=False)
    outcome = IngestOutcome(run_id, kind, hostname, stored=True)
    if report:
        outcome.results, outcome.metrics = _store_results(session, inserted, node_id, document, started)
        _update_latest(session, node_id, inserted, started)
    drafts = events_of(document)
    outcome.problems = _store_events(session, drafts, inserted, node_id, started, now)
    outcome.events = len(drafts)
    session.execute(update(StoredReport).where(StoredReport.id == inserted).values(event_count=len(drafts)))
    return outcome


def _exit_code(document: Document) -> int | None:
    """The exit code the CLI gave (a comparison's: 0 equivalent, 1 divergent); None when it does not fit a column."""
    return _fits((0 if document.equivalent else 1) if isinstance(document, CompareUpload) else document.exit_code, 31)


def _fits(value: int | None, bits: int) -> int | None:
    """An integer as a column of `bits` (plus sign) holds it; None when it does not fit (the document keeps it)."""
    return value if value is not None and -(2**bits) <= value < 2**bits else None


def _upsert_node(session: Session, hostname: str, document: Document, now: datetime) -> int:
    values: dict = {"hostname": hostname, "first_seen": now, "last_seen": now}
    if isinstance(document, ReportUpload):
        host = document.host
        values |= {"os": host.os[:255], "python": host.python[:64], "torch": (host.torch or "")[:64] or None,
                   "stack": dict(host.stack)}
    statement = insert_for(session, Node).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in ("hostname", "first_seen")}
    return session.execute(statement.on_conflict_do_update(index_elements=["hostname"], set_=changes)
                           .returning(Node.id)).scalar_one()


def _upsert_devices(session: Session, node_id: int, report: ReportUpload, now: datetime) -> None:
    for device in sorted(report.devices, key=lambda d: d.id):
        values = {"node_id": node_id, "device": device.id[:64], "model": device.name[:255],
                  "vendor": device.vendor[:64],
                  "memory_bytes": _fits(device.memory_bytes, 63),
                  "driver_version": (device.driver_version or "")[:128] or None,
                  "runtime_version": (device.runtime_version or "")[:128] or None,
                  "first_seen": now, "last_seen": now}
        statement = insert_for(session, Device).values(**values)
        changes = {k: statement.excluded[k] for k in values if k not in ("node_id", "device", "first_seen")}
        session.execute(statement.on_conflict_do_update(index_elements=["node_id", "device"], set_=changes))


def _store_results(session: Session, report_id: int, node_id: int, report: ReportUpload,
                   measured_at: datetime) -> tuple[int, int]:
    if not report.results:
        return 0, 0
    models = {device.id: device.name for device in report.devices}
    rows = [{"report_id": report_id, "position": i, "check": r.check[:128], "device": r.device[:64],
             "device_model": models.get(r.device, r.device.split(":", 1)[0])[:255], "status": r.status.value,
             "message": r.message, "duration_s": _finite(r.duration_s) or 0.0, "rank": _fits(r.rank, 31)}
            for i, r in enumerate(report.results)]
    ids = session.execute(insert(ResultRow).returning(ResultRow.id, sort_by_parameter_order=True), rows,
                          execution_options=ALL_COLUMNS).scalars()
    metrics = [{"report_id": report_id, "result_id": result_id, "node_id": node_id, "check": row["check"],
                "device": row["device"], "device_model": row["device_model"], "name": m.name[:128],
                "dtype": (m.dtype or "")[:32] or None, "unit": m.unit[:32], "value": _finite(m.value),
                "threshold": _finite(m.threshold), "baseline": _finite(m.baseline), "measured_at": measured_at}
               for result_id, row, result in zip(ids, rows, report.results, strict=True) for m in result.metrics]
    if metrics:
        # RETURNING makes it one multi-row INSERT ("insertmanyvalues") where psycopg would send a statement a row.
        session.execute(insert(ResultMetric).returning(ResultMetric.id), metrics, execution_options=ALL_COLUMNS)
    return len(rows), len(metrics)


def _update_latest(session: Session, node_id: int, report_id: int, started: datetime) -> None:
    """The node's latest health report is the one that started last (an old report uploaded late is not)."""
    current = session.execute(
        select(StoredReport.started_at).join(Node, Node.latest_report_id == StoredReport.id)
        .where(Node.id == node_id)).scalar()
    if current is None or current <= started:
        session.execute(update(Node).where(Node.id == node_id).values(latest_report_id=report_id))


def _store_events(session: Session, drafts: list[EventDraft], report_id: int, node_id: int, occurred: datetime,
                  now: datetime) -> list[ProblemTouched]:
    by_fingerprint: dict[str, list[EventDraft]] = defaultdict(list)
    for draft in drafts:
        by_fingerprint[draft.fingerprint].append(draft)
    if not by_fingerprint:
        return []
    known = dict(session.execute(select(Problem.fingerprint, Problem.id)
                                 .where(Problem.fingerprint.in_(list(by_fingerprint)))).all())
    touched = []
    for print_, group in sorted(by_fingerprint.items()):
        problem_id, status = _upsert_problem(session, print_, group, occurred, now)
        touched.append(ProblemTouched(problem_id, print_, group[0].title, status, print_ not in known, len(group)))
        session.execute(insert(Event), [{"problem_id": problem_id, "report_id": report_id, "node_id": node_id,
                                         "device": d.device, "message": d.message, "occurred_at": occurred}
                                        for d in group], execution_options=ALL_COLUMNS)
        sightings: dict[tuple[str, str], int] = defaultdict(int)
        for d in group:
            sightings[(d.device or "", d.software)] += 1
        for (device, software), count in sorted(sightings.items()):
            statement = insert_for(session, Sighting).values(
                problem_id=problem_id, node_id=node_id, device=device[:64], software=software[:1000], count=count,
                first_seen=occurred, last_seen=occurred)
            table, at = Sighting.__table__.c, literal(occurred, UTCDateTime())
            session.execute(statement.on_conflict_do_update(
                index_elements=["problem_id", "node_id", "device", "software"],
                set_={"count": table.count + statement.excluded.count,
                      "first_seen": case((table.first_seen > at, at), else_=table.first_seen),
                      "last_seen": case((table.last_seen < at, at), else_=table.last_seen)}))
    return touched


def _upsert_problem(session: Session, print_: str, group: list[EventDraft], occurred: datetime,
                    now: datetime) -> tuple[int, str]:
    first = group[0]
    statement = insert_for(session, Problem).values(
        fingerprint=print_, kind=first.kind, key=first.key[:255], device_model=first.device_model[:255],
        title=first.title, example=first.message[:4000], status="open", event_count=len(group), first_seen=occurred,
        last_seen=occurred, status_changed_at=now)
    # Naive UTC through the column type: a bare aware datetime would be shifted by PostgreSQL's session time zone.
    table, at, changed = Problem.__table__.c, literal(occurred, UTCDateTime()), literal(now, UTCDateTime())
    # A resolved problem that happens again after it was resolved has regressed; an old report uploaded late
    # (from before the resolution) does not reopen it.
    comes_back = and_(table.status == "resolved", table.resolved_at < at)
    statement = statement.on_conflict_do_update(index_elements=["fingerprint"], set_={
        "event_count": table.event_count + len(group),
        "first_seen": case((table.first_seen > at, at), else_=table.first_seen),
        "last_seen": case((table.last_seen < at, at), else_=table.last_seen),
        "status": case((comes_back, "regressed"), else_=table.status),
        "status_changed_at": case((comes_back, changed), else_=table.status_changed_at),
    })
    row = session.execute(statement.returning(Problem.id, Problem.status)).one()
    return row.id, row.status
