"""The reads behind the pages that the API does not have: node health, the fleet overview, a node's trends and a
metric's distribution across the fleet.

The fleet page must stay fast with tens of thousands of reports, so everything here is aggregated in SQL, bounded
(pages of nodes, capped trend points) and reached through indexes: a node's health comes from its latest report
(`nodes.latest_report_id`) and that report's results (`results.report_id`), never from scanning the reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, literal, select
from sqlalchemy.orm import Session

from acceldoctor.portal.db.models import (
    Device,
    Node,
    Problem,
    ResultMetric,
    ResultRow,
    Sighting,
    StoredReport,
    utcnow,
)

STALE_AFTER = timedelta(days=7)  # a node silent this long is "stale", whatever its last report said
HEALTHS = ("healthy", "warn", "problem", "stale", "unknown")
UNRESOLVED_STATUSES = ("open", "acknowledged", "regressed")  # every status but resolved
PROBLEM_STATUSES = ("fail", "timeout", "crash")
WARN_STATUSES = ("warn", "error")
NODES_PER_PAGE = 50
TREND_DAYS = 90
TREND_POINTS = 5000  # per node page: a year of hourly runs would be thinned to the newest points


def health_expression(now: datetime):
    """A node's health as one SQL CASE over its row and its latest report (joined as StoredReport)."""
    latest_has = lambda statuses: exists().where(  # noqa: E731
        ResultRow.report_id == Node.latest_report_id, ResultRow.status.in_(statuses))
    return case(
        (Node.latest_report_id.is_(None), literal("unknown")),  # only explain or compare uploads: no health report
        (Node.last_seen < now - STALE_AFTER, literal("stale")),
        (StoredReport.exit_code == 1, literal("problem")),
        (latest_has(PROBLEM_STATUSES), literal("problem")),
        (latest_has(WARN_STATUSES), literal("warn")),
        (and_(StoredReport.exit_code.is_not(None), StoredReport.exit_code != 0), literal("warn")),
        else_=literal("healthy"))


@dataclass
class NodeLine:
    hostname: str
    health: str
    last_seen: datetime
    run_id: str | None
    started_at: datetime | None
    exit_code: int | None
    models: list[str]
    unresolved_problems: int


@dataclass
class Overview:
    counts: dict[str, int]  # health -> nodes
    total: int  # nodes in the (filtered) table
    nodes: list[NodeLine]
    models: list[tuple[str, dict[str, int]]]  # device model -> health -> devices
    unresolved_problems: int
    reports: int


def _node_health(now: datetime):
    """(node_id, health) for every node, as a subquery: each query of the fleet page groups or filters on it, so the
    CASE is written once and the GROUP BY names a column rather than repeating the expression."""
    return (select(Node.id.label("node_id"), health_expression(now).label("health"))
            .outerjoin(StoredReport, StoredReport.id == Node.latest_report_id).subquery("node_health"))


def fleet_overview(session: Session, *, health: str | None, offset: int, limit: int = NODES_PER_PAGE) -> Overview:
    health_of = _node_health(utcnow())
    counts = dict(session.execute(select(health_of.c.health, func.count()).group_by(health_of.c.health)).all())
    unresolved_count = select(func.count(func.distinct(Sighting.problem_id))).join(
        Problem, Problem.id == Sighting.problem_id).where(
        Sighting.node_id == Node.id, Problem.status.in_(UNRESOLVED_STATUSES)).scalar_subquery()
    rows = (select(Node.id, Node.hostname, health_of.c.health, Node.last_seen, StoredReport.run_id,
                   StoredReport.started_at, StoredReport.exit_code, unresolved_count.label("unresolved_problems"))
            .join(health_of, health_of.c.node_id == Node.id)
            .outerjoin(StoredReport, StoredReport.id == Node.latest_report_id))
    if health:
        rows = rows.where(health_of.c.health == health)
    # Worst first: a person opens the fleet page to see what is wrong.
    order = case({"problem": 0, "warn": 1, "stale": 2, "unknown": 3}, value=health_of.c.health, else_=4)
    page = session.execute(rows.order_by(order, Node.hostname).limit(limit).offset(offset)).all()
    models: dict[int, list[str]] = {}
    if page:
        for node_id, model in session.execute(select(Device.node_id, Device.model).distinct().where(
                Device.node_id.in_([r.id for r in page])).order_by(Device.model)):
            models.setdefault(node_id, []).append(model)
    by_model: dict[str, dict[str, int]] = {}
    device_health = (select(Device.model, health_of.c.health, func.count())
                     .join(health_of, health_of.c.node_id == Device.node_id)
                     .group_by(Device.model, health_of.c.health).order_by(Device.model))
    for model, node_health, count in session.execute(device_health):
        by_model.setdefault(model, {})[node_health] = count
    unresolved_problems = session.scalar(select(func.count()).where(Problem.status.in_(UNRESOLVED_STATUSES))) or 0
    reports = session.scalar(select(func.count()).select_from(StoredReport)) or 0
    return Overview(
        counts={h: counts.get(h, 0) for h in HEALTHS},
        total=counts.get(health, 0) if health else sum(counts.values()),
        nodes=[NodeLine(r.hostname, r.health, r.last_seen, r.run_id, r.started_at, r.exit_code,
                        models.get(r.id, []), r.unresolved_problems or 0) for r in page],
        models=sorted(by_model.items()), unresolved_problems=unresolved_problems, reports=reports)


def node_health(session: Session, node_id: int) -> str:
    query = (select(health_expression(utcnow())).select_from(Node)
             .outerjoin(StoredReport, StoredReport.id == Node.latest_report_id).where(Node.id == node_id))
    return session.scalar(query) or "unknown"


@dataclass
class TrendSeries:
    check: str
    metric: str
    dtype: str | None
    unit: str
    points: dict[str, list[tuple[datetime, float | None]]]  # device -> (time, value), oldest first


def node_trends(session: Session, node_id: int, units: frozenset[str]) -> list[TrendSeries]:
    """The node's performance metrics (rates and times: `units`) over the last TREND_DAYS, per device."""
    since = utcnow() - timedelta(days=TREND_DAYS)
    rows = session.execute(
        select(ResultMetric.check, ResultMetric.name, ResultMetric.dtype, ResultMetric.unit, ResultMetric.device,
               ResultMetric.measured_at, ResultMetric.value)
        .where(ResultMetric.node_id == node_id, ResultMetric.check.like("performance.%"),
               ResultMetric.measured_at >= since, ResultMetric.unit.in_(units))
        .order_by(ResultMetric.measured_at.desc()).limit(TREND_POINTS)).all()
    series: dict[tuple, TrendSeries] = {}
    for check, name, dtype, unit, device, measured_at, value in reversed(rows):
        key = (check, name, dtype or "", unit)
        found = series.setdefault(key, TrendSeries(check, name, dtype, unit, {}))
        found.points.setdefault(device, []).append((measured_at, value))
    return [series[k] for k in sorted(series)]


@dataclass
class Sample:
    hostname: str
    device: str
    model: str
    value: float
    unit: str
    run_id: str


def metric_samples(session: Session, check: str, metric: str, dtype: str | None) -> list[Sample]:
    """The metric as each device measured it in its node's latest report: the fleet as it is now."""
    query = (select(Node.hostname, ResultMetric.device, ResultMetric.device_model, ResultMetric.value,
                    ResultMetric.unit, StoredReport.run_id)
             .join(Node, Node.latest_report_id == ResultMetric.report_id)
             .join(StoredReport, StoredReport.id == ResultMetric.report_id)
             .where(ResultMetric.check == check, ResultMetric.name == metric, ResultMetric.value.is_not(None)))
    query = query.where(ResultMetric.dtype == dtype) if dtype else query.where(ResultMetric.dtype.is_(None))
    return [Sample(*row) for row in session.execute(query.order_by(ResultMetric.device_model, Node.hostname,
                                                                   ResultMetric.device))]


def metric_dtypes(session: Session, check: str, metric: str) -> list[str]:
    rows = session.scalars(select(ResultMetric.dtype).distinct().join(
        Node, Node.latest_report_id == ResultMetric.report_id).where(
        ResultMetric.check == check, ResultMetric.name == metric, ResultMetric.dtype.is_not(None)))
    return sorted(rows)


def node_runs(session: Session, node_id: int, *, offset: int, limit: int) -> tuple[int, list[StoredReport]]:
    total = session.scalar(select(func.count()).where(StoredReport.node_id == node_id)) or 0
    rows = session.scalars(select(StoredReport).where(StoredReport.node_id == node_id)
                           .order_by(StoredReport.started_at.desc(), StoredReport.id.desc())
                           .limit(limit).offset(offset)).all()
    return total, list(rows)


def latest_results(session: Session, report_id: int | None) -> list[ResultRow]:
    if report_id is None:
        return []
    return list(session.scalars(select(ResultRow).where(ResultRow.report_id == report_id)
                                .order_by(ResultRow.position)))
