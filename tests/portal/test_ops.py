"""/healthz, /metrics, retention and the JSON log lines."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from acceldoctor.portal.client import describe_upload
from acceldoctor.portal.db.models import Event, ResultMetric, Sighting, StoredReport
from acceldoctor.portal.ingest import ingest
from acceldoctor.portal.logs import JsonLineFormatter
from acceldoctor.portal.metrics import _label
from acceldoctor.portal.retention import delete_expired

from .conftest import DEVICE_MODEL, failing, make_report
from .test_ingest import OOM_FINDING, explain_document


def test_healthz_needs_no_token(portal):
    response = portal.client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_metrics_in_prometheus_format(portal):
    portal.upload(make_report("node-a", results=[failing()]))
    portal.upload(make_report("node-b"))
    portal.upload(make_report("node-b"))
    assert portal.client.get("/metrics").status_code == 401
    response = portal.client.get("/metrics", headers=portal.headers("uploader"))
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert 'acceldoctor_portal_reports{kind="check"} 3' in lines
    assert 'acceldoctor_portal_problems{status="open"} 1' in lines
    assert 'acceldoctor_portal_uploads_total{outcome="stored"} 3' in lines
    assert f'acceldoctor_portal_devices{{model="{DEVICE_MODEL}",health="problem"}} 1' in lines
    assert f'acceldoctor_portal_devices{{model="{DEVICE_MODEL}",health="healthy"}} 3' in lines
    assert "# TYPE acceldoctor_portal_nodes gauge" in lines and "acceldoctor_portal_nodes 2" in lines


def test_metric_labels_are_escaped():
    assert _label('a "b"\\\nc') == 'a \\"b\\"\\\\\\nc'


def test_retention_deletes_old_reports_and_keeps_problem_counts(portal):
    now = datetime.now(timezone.utc)
    old, recent = make_report("node-a", results=[failing()]), make_report("node-a", results=[failing()])
    with portal.database.write_session() as session:
        ingest(session, _parsed(recent), now=now - timedelta(days=2))
        ingest(session, _parsed(old), now=now - timedelta(days=40))
        session.commit()
    before = portal.get("/api/v1/problems")["items"][0]
    assert delete_expired(portal.database, retention_days=30) == 1
    assert portal.count(StoredReport) == 1 and portal.count(Event) == 1 and portal.count(ResultMetric) == 1
    after = portal.get("/api/v1/problems")["items"][0]
    assert (after["count"], after["first_seen"], after["node_count"]) == (2, before["first_seen"], 1)
    assert portal.count(Sighting) == 1
    assert portal.get("/api/v1/nodes/node-a")["latest_report"]["run_id"] == recent["run_id"]
    assert delete_expired(portal.database, retention_days=1) == 1
    assert portal.get("/api/v1/nodes/node-a")["latest_report"] is None
    assert portal.get("/api/v1/problems")["items"][0]["count"] == 2


def test_a_report_uploaded_again_after_retention_deleted_it_is_not_counted_again(portal):
    report = make_report("node-a", results=[failing()])
    assert portal.upload(report).status_code == 201
    assert delete_expired(portal.database, retention_days=30, now=datetime.now(timezone.utc) + timedelta(days=31)) == 1
    again = portal.upload(report)  # e.g. `acceldoctor upload *.json` over an old directory
    assert again.status_code == 200, again.text
    assert again.json()["stored"] is False and again.json()["expired_at"] is not None
    assert "retention" in describe_upload("report.json", again.json())
    assert portal.count(StoredReport) == 0 and portal.count(Event) == 0
    assert portal.get("/api/v1/reports")["total"] == 0
    assert portal.get("/api/v1/problems")["items"][0]["count"] == 1
    assert portal.get("/api/v1/nodes/node-a")["latest_report"] is None
    changed = make_report("node-a", run_id=report["run_id"], results=[failing(message="another failure")])
    assert portal.upload(changed).status_code == 409  # as for a stored run_id: a retry is the same document
    assert portal.count(StoredReport) == 0


def test_an_explain_result_uploaded_again_after_retention_deleted_it_is_not_counted_again(portal):
    document = explain_document(OOM_FINDING)
    assert portal.upload(document, host="node-a").status_code == 201
    assert delete_expired(portal.database, retention_days=1, now=datetime.now(timezone.utc) + timedelta(days=2)) == 1
    again = portal.upload(document, host="node-a")
    assert again.status_code == 200 and again.json()["expired_at"] is not None, again.text
    assert portal.get("/api/v1/problems")["items"][0]["count"] == 1
    assert portal.upload(document, host="node-b").status_code == 201  # the same result from another node counts


def _parsed(report: dict):
    from pydantic import TypeAdapter

    from acceldoctor.portal.documents import UploadDocument

    return TypeAdapter(UploadDocument).validate_python(report)


def test_log_lines_are_json():
    record = logging.LogRecord("acceldoctor.portal", logging.INFO, __file__, 1, "upload", None, None)
    record.fields = {"run_id": "abc", "status": 201}
    line = json.loads(JsonLineFormatter().format(record))
    assert line["message"] == "upload" and line["run_id"] == "abc" and line["level"] == "info"


def test_openapi_describes_the_upload_body(portal):
    spec = portal.client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/reports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["propertyName"] == "schema"
    assert {"ReportUpload", "ExplainUpload", "CompareUpload"} <= set(spec["components"]["schemas"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
