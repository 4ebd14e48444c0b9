"""Reads for reports, nodes and devices: functions taking a Session, shared by the API and (later) the pages."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from acceldoctor.portal.api.schemas import DeviceOut, NodeDetailOut, NodeOut, Page, ReportOut, ReportSummaryOut
from acceldoctor.portal.db.models import Device, Node, Problem, Sighting, StoredReport


def report_summary(report: StoredReport, hostname: str) -> ReportSummaryOut:
    return ReportSummaryOut(run_id=report.run_id, kind=report.kind, schema=report.schema, host=hostname,
                            started_at=report.started_at, finished_at=report.finished_at,
                            received_at=report.received_at, exit_code=report.exit_code, summary=report.summary,
                            result_count=report.result_count, event_count=report.event_count)


def list_reports(session: Session, *, limit: int, offset: int, host: str | None = None, kind: str | None = None
                 ) -> Page[ReportSummaryOut]:
    query = select(StoredReport, Node.hostname).join(Node, Node.id == StoredReport.node_id)
    if host is not None:
        query = query.where(Node.hostname == host)
    if kind is not None:
        query = query.where(StoredReport.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.order_by(StoredReport.received_at.desc(), StoredReport.id.desc())
                           .limit(limit).offset(offset)).all()
    return Page(total=total or 0, limit=limit, offset=offset, items=[report_summary(r, h) for r, h in rows])


def get_report(session: Session, run_id: str) -> ReportOut | None:
    row = session.execute(select(StoredReport, Node.hostname).join(Node, Node.id == StoredReport.node_id)
                          .where(StoredReport.run_id == run_id)).first()
    if row is None:
        return None
    report, hostname = row
    return ReportOut(**report_summary(report, hostname).model_dump(by_alias=True),
                     document=json.loads(report.document))


def _device_out(device: Device, hostname: str) -> DeviceOut:
    return DeviceOut(host=hostname, device=device.device, model=device.model, vendor=device.vendor,
                     memory_bytes=device.memory_bytes, driver_version=device.driver_version,
                     runtime_version=device.runtime_version, first_seen=device.first_seen, last_seen=device.last_seen)


def _node_rows(session: Session):
    """Each node with its device and report counts and its latest report, in one query (no query per node)."""
    devices = select(func.count()).where(Device.node_id == Node.id).scalar_subquery()
    reports = select(func.count()).where(StoredReport.node_id == Node.id).scalar_subquery()
    latest = aliased(StoredReport)  # not the counted StoredReport, which the subquery must not correlate with
    return (select(Node, devices.label("device_count"), reports.label("report_count"), latest)
            .outerjoin(latest, latest.id == Node.latest_report_id))


def _node_out(session: Session, node: Node, device_count: int, report_count: int,
              latest: StoredReport | None) -> NodeOut:
    return NodeOut(hostname=node.hostname, first_seen=node.first_seen, last_seen=node.last_seen, os=node.os,
                   python=node.python, torch=node.torch, stack=node.stack, device_count=device_count,
                   report_count=report_count,
                   latest_report=report_summary(latest, node.hostname) if latest is not None else None)


def list_nodes(session: Session, *, limit: int, offset: int) -> Page[NodeOut]:
    total = session.scalar(select(func.count()).select_from(Node)) or 0
    rows = session.execute(_node_rows(session).order_by(Node.hostname).limit(limit).offset(offset)).all()
    return Page(total=total, limit=limit, offset=offset, items=[_node_out(session, *row) for row in rows])


def get_node(session: Session, hostname: str) -> NodeDetailOut | None:
    row = session.execute(_node_rows(session).where(Node.hostname == hostname)).first()
    if row is None:
        return None
    node = row[0]
    open_problems = session.scalar(
        select(func.count(func.distinct(Sighting.problem_id))).join(Problem, Problem.id == Sighting.problem_id)
        .where(Sighting.node_id == node.id, Problem.status.in_(("open", "acknowledged", "regressed")))) or 0
    return NodeDetailOut(**_node_out(session, *row).model_dump(),
                         devices=[_device_out(d, node.hostname) for d in node.devices], open_problems=open_problems)


def list_devices(session: Session, *, limit: int, offset: int, model: str | None = None,
                 host: str | None = None) -> Page[DeviceOut]:
    query = select(Device, Node.hostname).join(Node, Node.id == Device.node_id)
    if model is not None:
        query = query.where(Device.model == model)
    if host is not None:
        query = query.where(Node.hostname == host)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Node.hostname, Device.device).limit(limit).offset(offset)).all()
    return Page(total=total, limit=limit, offset=offset, items=[_device_out(d, h) for d, h in rows])
