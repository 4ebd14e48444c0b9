"""`/metrics` in the Prometheus text exposition format: what is stored (from the database, so every replica and
restart agrees) and what this process handled (counters)."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from acceldoctor.portal.db.models import Device, Node, Problem, ResultRow, StoredReport
from acceldoctor.report.model import PROBLEM_STATUSES


class ProcessCounters:
    """Counters since this server started; incremented from the request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.uploads: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()

    def upload(self, outcome: str) -> None:
        with self._lock:
            self.uploads[outcome] += 1

    def request(self, status: int) -> None:
        with self._lock:
            self.requests[f"{status // 100}xx"] += 1

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.uploads), dict(self.requests)


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self.lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def fleet_health(session: Session) -> list[tuple[str, str, int]]:
    """(device model, health, devices): health from the node's latest check or stress report: `problem` when a
    result on the device failed, timed out or crashed, `unknown` when the node has no such report."""
    failing = exists().where(and_(ResultRow.report_id == Node.latest_report_id, ResultRow.device == Device.device,
                                  ResultRow.status.in_([s.value for s in PROBLEM_STATUSES])))
    health = case((Node.latest_report_id.is_(None), "unknown"), (failing, "problem"), else_="healthy")
    rows = session.execute(select(Device.model, health.label("health"), func.count())
                           .join(Node, Node.id == Device.node_id).group_by(Device.model, health)).all()
    return [(model, state, count) for model, state, count in rows]


def exposition(session: Session, counters: ProcessCounters) -> str:
    out = _Exposition()
    uploads, requests = counters.snapshot()
    out.family("acceldoctor_portal_uploads_total", "counter", "Uploads handled by this process, by outcome.",
               [({"outcome": k}, v) for k, v in sorted(uploads.items())])
    out.family("acceldoctor_portal_requests_total", "counter", "HTTP requests answered by this process, by class.",
               [({"code": k}, v) for k, v in sorted(requests.items())])
    reports = session.execute(select(StoredReport.kind, func.count()).group_by(StoredReport.kind)).all()
    out.family("acceldoctor_portal_reports", "gauge", "Reports stored (ingested and not yet expired), by kind.",
               [({"kind": k}, n) for k, n in sorted(reports)])
    problems = dict(session.execute(select(Problem.status, func.count()).group_by(Problem.status)).all())
    out.family("acceldoctor_portal_problems", "gauge", "Problems, by status.",
               [({"status": s}, problems.get(s, 0)) for s in ("open", "acknowledged", "regressed", "resolved")])
    out.family("acceldoctor_portal_nodes", "gauge", "Nodes that uploaded something.",
               [({}, session.scalar(select(func.count()).select_from(Node)) or 0)])
    out.family("acceldoctor_portal_devices", "gauge",
               "Devices by model and health in their node's latest check or stress report.",
               [({"model": m, "health": h}, n) for m, h, n in sorted(fleet_health(session))])
    return out.text()
