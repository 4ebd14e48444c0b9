"""The documents benchmarks/portal_load.py uploads (made by benchmarks/portal_load_documents.py) are valid,
distinct, reproducible (a resend is the same document), and group into the few problems the script expects; and an
upload stays a handful of SQL statements however many metrics it has (it was one statement per metric: the load
benchmark found it)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from sqlalchemy import event, func, select

from acceldoctor.portal.db.models import ResultMetric
from acceldoctor.portal.grouping import normalize_message
from acceldoctor.report.model import Report

from .conftest import make_report
from .test_ingest import OOM_FINDING, compare_document, explain_document

ROOT = Path(__file__).resolve().parents[2]


def _load_documents():
    spec = importlib.util.spec_from_file_location("portal_load_documents",
                                                  ROOT / "benchmarks" / "portal_load_documents.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _template() -> dict:
    checks = ["correctness.matmul", "correctness.attention", "environment.memory_pattern", "determinism.reduction"]
    return make_report(host="template", results=[(c, "cuda:0", "pass", "fine") for c in checks])


def test_generated_reports_are_valid_distinct_and_reproducible():
    documents, template = _load_documents(), _template()
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    reports = [documents.make_report(template, seed=3, index=i, nodes=50) for i in range(200)]
    for report in reports[:20]:
        Report.model_validate(report)
        try:
            import jsonschema
        except ImportError:
            continue
        jsonschema.validate(report, schema)
    assert len({r["run_id"] for r in reports}) == 200
    assert len({r["host"]["hostname"] for r in reports}) > 10
    assert documents.make_report(template, seed=3, index=7, nodes=50) == reports[7]  # a resend is the same document
    failing = [r for r in reports if r["exit_code"] == 1]
    assert failing and all(documents.is_failing(3, int(r["run_id"].split("-")[2])) for r in failing)
    titles = {normalize_message(f"{x['status']}: {x['message']}") for r in failing for x in r["results"]
              if x["status"] != "pass"}
    assert len(titles) <= len(documents.FAILURES)


def test_explain_and_compare_variations_are_distinct_documents_that_group_into_one_problem_each(portal):
    documents = _load_documents()
    templates = {"explain": explain_document(OOM_FINDING), "compare_bad": compare_document(equivalent=False),
                 "compare_ok": compare_document(equivalent=True)}
    explains = [documents.make_explain(templates["explain"], seed=1, index=i) for i in range(3)]
    compares = [documents.make_compare(templates, seed=1, index=i) for i in range(1, 6, 2)]  # odd: divergent
    assert explains[0] != explains[1] and documents.make_explain(templates["explain"], 1, 0) == explains[0]
    assert explains[1]["findings"][0]["file"] == explains[1]["files"][0] == "/var/log/jobs/job-1-000001.log"
    answers = [portal.upload(d, host="node-0001").json() for d in explains + compares]
    assert all(a["stored"] for a in answers) and len({a["run_id"] for a in answers}) == 6
    problems = portal.get("/api/v1/problems")["items"]
    assert sorted((p["kind"], p["count"]) for p in problems) == [("divergence", 3), ("finding", 3)]


def test_an_upload_is_a_few_statements_whatever_its_metric_count(portal):
    report = make_report(host="node-1")
    result = report["results"][0]
    # Metrics alternately with and without a threshold and baseline: rows with different None columns.
    result["metrics"] = [{"name": f"m{i}", "value": float(i), "unit": "s", "threshold": 1.0 if i % 2 else None,
                          "baseline": None if i % 3 else 2.0} for i in range(300)]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(portal.database.engine, "before_cursor_execute", listener)
    try:
        assert portal.upload(report).status_code == 201
    finally:
        event.remove(portal.database.engine, "before_cursor_execute", listener)
    assert len(statements) < 30, len(statements)
    with portal.database.read_session() as session:
        stored = session.execute(select(ResultMetric.threshold, ResultMetric.baseline).order_by(ResultMetric.id)).all()
        assert session.scalar(select(func.count()).select_from(ResultMetric)) == 300
    assert stored[:4] == [(None, 2.0), (1.0, None), (None, None), (1.0, 2.0)]
