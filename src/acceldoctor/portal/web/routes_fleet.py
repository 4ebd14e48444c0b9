"""Pages about machines and measurements: the fleet overview, a node, a metric across the fleet, one report."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from acceldoctor.baseline.baseline import HIGHER_IS_BETTER_UNITS, LOWER_IS_BETTER_UNITS
from acceldoctor.portal.api.deps import ReadSession
from acceldoctor.portal.db.models import Node, ResultMetric, StoredReport
from acceldoctor.portal.problems import ProblemFilter, list_problems
from acceldoctor.portal.web import queries
from acceldoctor.portal.web.params import Offset, choice, text
from acceldoctor.portal.web.plots import group_by_model, outlier_rule, strip_plot, trend_chart
from acceldoctor.portal.web.render import render, static_file
from acceldoctor.portal.web.session import PageError, Viewer, viewer
from acceldoctor.report.html import report_page
from acceldoctor.report.model import Report

router = APIRouter(include_in_schema=False)
Page = Annotated[Viewer, Depends(viewer)]
Text = text()
HealthChoice = choice(queries.HEALTHS)
Dtype = text(max_length=32)
RUNS_PER_PAGE = 20
TREND_UNITS = HIGHER_IS_BETTER_UNITS | LOWER_IS_BETTER_UNITS
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@router.get("/static/{name}")
def static(name: Annotated[str, Path(max_length=64)]) -> Response:
    """The pages' CSS and vendored htmx (no login: they hold nothing of the fleet's)."""
    body = static_file(name)
    if body is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(body, media_type=STATIC_TYPES[name[name.rfind("."):]],
                    headers={"Cache-Control": "public, max-age=3600"})


@router.get("/", response_class=HTMLResponse)
def fleet(request: Request, view: Page, session: ReadSession, offset: Offset = 0, health: HealthChoice = None):
    overview = queries.fleet_overview(session, health=health, offset=offset)
    return render(request, view, "fleet.html.j2", overview=overview, health=health, offset=offset,
                  limit=queries.NODES_PER_PAGE, stale_days=queries.STALE_AFTER.days)


def _node(session, hostname: str) -> Node:
    node = session.scalar(select(Node).where(Node.hostname == hostname))
    if node is None:
        raise PageError(404, f"No node named {hostname!r} has uploaded anything.")
    return node


@router.get("/nodes/{hostname:path}", response_class=HTMLResponse)
def node_page(request: Request, hostname: Annotated[str, Path(max_length=255)], view: Page, session: ReadSession,
              runs_offset: Offset = 0):
    node = _node(session, hostname)
    latest = session.get(StoredReport, node.latest_report_id) if node.latest_report_id else None
    series = queries.node_trends(session, node.id, TREND_UNITS)
    newest = max((t for s in series for points in s.points.values() for t, _ in points), default=None)
    charts = [(s, trend_chart(s, newest)) for s in series]
    total_runs, runs = queries.node_runs(session, node.id, offset=runs_offset, limit=RUNS_PER_PAGE)
    problems = list_problems(session, ProblemFilter(host=hostname), limit=50, offset=0)
    return render(request, view, "node.html.j2", node=node, health=queries.node_health(session, node.id),
                  latest=latest, results=queries.latest_results(session, node.latest_report_id), charts=charts,
                  runs=runs, total_runs=total_runs, runs_offset=runs_offset, runs_limit=RUNS_PER_PAGE,
                  problems=problems)


def _metric_choices(session) -> list[tuple[str, str, str | None]]:
    """Each performance metric some node's latest report holds (bounded by nodes x metrics)."""
    rows = session.execute(select(ResultMetric.check, ResultMetric.name, ResultMetric.dtype).distinct()
                           .join(Node, Node.latest_report_id == ResultMetric.report_id)
                           .where(ResultMetric.check.like("performance.%"), ResultMetric.unit.in_(TREND_UNITS)))
    return sorted(rows, key=lambda r: (r[0], r[1], r[2] or ""))


@router.get("/fleet/metric", response_class=HTMLResponse)
def metric_page(request: Request, view: Page, session: ReadSession, check: Text = None, metric: Text = None,
                dtype: Dtype = None):
    if not check or not metric:
        return render(request, view, "metric.html.j2", check=None, metric=None, dtype=None,
                      choices=_metric_choices(session), groups=[], chart=None, dtypes=[], rule=outlier_rule())
    samples = queries.metric_samples(session, check, metric, dtype or None)
    rule = outlier_rule()
    groups = group_by_model(samples, rule)
    unit = samples[0].unit if samples else ""
    title = f"{check} {metric}" + (f" ({dtype})" if dtype else "")
    return render(request, view, "metric.html.j2", check=check, metric=metric, dtype=dtype or None, groups=groups,
                  chart=strip_plot(groups, title=title, unit=unit), unit=unit, rule=rule, choices=[],
                  dtypes=queries.metric_dtypes(session, check, metric))


@router.get("/reports/{run_id:path}", response_class=HTMLResponse)
def report_view(request: Request, run_id: Annotated[str, Path(max_length=200)], view: Page, session: ReadSession):
    row = session.execute(select(StoredReport, Node.hostname).join(Node, Node.id == StoredReport.node_id)
                          .where(StoredReport.run_id == run_id)).first()
    if row is None:
        raise PageError(404, f"No report with run id {run_id!r}.")
    stored, hostname = row
    document = json.loads(stored.document)
    page = None
    if stored.kind in ("check", "stress"):
        try:
            page = report_page(Report.model_validate(document))
        except ValidationError:  # stored by an older portal under looser rules: show the JSON instead
            page = None
    return render(request, view, "report.html.j2", stored=stored, hostname=hostname, page=page, doc=document,
                  raw=json.dumps(document, indent=2, ensure_ascii=False)[:200_000])
