"""Bad uploads get a 4xx with a clear message and store nothing; a database failure is a 503 and stores nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from acceldoctor.portal.db.models import Node, StoredReport

from .conftest import failing, make_report


def _with(change) -> bytes:
    report = make_report(results=[failing()])
    change(report)
    return json.dumps(report).encode()


BAD_BODIES = {
    "malformed JSON": (b'{"schema": "acceldoctor.report/1", "run_id": ', 422, "not valid JSON"),
    "not an object": (b"[1, 2, 3]", 422, ""),
    "no schema": (_with(lambda r: r.pop("schema")), 422, "no `schema` field"),
    "newer schema": (_with(lambda r: r.update(schema="acceldoctor.report/2")), 422, "unsupported schema"),
    "unknown top-level field": (_with(lambda r: r.update(colour="red")), 422, "colour"),
    "unknown field in a result": (_with(lambda r: r["results"][0].update(extra=1)), 422, "extra"),
    "unknown status": (_with(lambda r: r["results"][0].update(status="meh")), 422, "status"),
    "run_id too long": (_with(lambda r: r.update(run_id="x" * 201)), 422, "run_id"),
    "empty run_id": (_with(lambda r: r.update(run_id="")), 422, "run_id"),
    "nested too deep": (b'{"schema": "acceldoctor.compare/1", "equivalent": false, "runs": {"a": '
                        + b"[" * 100_000 + b"]" * 100_000 + b"}}", 400, "nested"),
    "explain without a host": (json.dumps({"schema": "acceldoctor.explain/1"}).encode(), 422, "host"),
}


def test_a_comparison_nested_past_the_serializer_is_a_422(portal):
    # deep enough for pydantic's serializer (255 levels), not for the JSON parser: it was a 500
    body = (b'{"schema": "acceldoctor.compare/1", "equivalent": false, "runs": {}, "first_divergence": '
            b'{"key": "k", "deep": ' + b"[" * 300 + b"]" * 300 + b"}}")
    response = portal.client.post("/api/v1/reports?host=node-1", content=body, headers={
        **portal.headers("uploader"), "Content-Type": "application/json"})
    assert response.status_code == 422 and "nested too deeply" in response.json()["detail"], response.text
    assert portal.count(StoredReport) == 0


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_upload_is_a_clear_4xx_and_stores_nothing(portal, case):
    body, status, words = BAD_BODIES[case]
    response = portal.client.post("/api/v1/reports", content=body, headers={
        **portal.headers("uploader"), "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words in detail
    assert portal.count(StoredReport) == 0 and portal.count(Node) == 0


def test_a_body_over_the_limit_is_refused(make_portal):
    portal = make_portal(max_body_bytes=4096)
    body = _with(lambda r: r["results"][0].update(message="x" * 5000))
    response = portal.client.post("/api/v1/reports", content=body, headers={
        **portal.headers("uploader"), "Content-Type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        yield body[:3000]
        yield body[3000:]

    streamed = portal.client.post("/api/v1/reports", content=chunks(), headers={
        **portal.headers("uploader"), "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert portal.count(StoredReport) == 0


def test_a_failed_commit_is_a_503_and_the_retry_stores_it_once(portal, monkeypatch):
    report = make_report(results=[failing()])
    original = Session.commit

    def broken(self):
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(Session, "commit", broken)
    response = portal.upload(report)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "retry" in response.json()["detail"]
    monkeypatch.setattr(Session, "commit", original)
    assert portal.count(StoredReport) == 0
    assert portal.upload(report).status_code == 201
    assert portal.upload(report).status_code == 200
    assert portal.count(StoredReport) == 1


@pytest.mark.parametrize("query", ["limit=0", "limit=100000", "offset=-1", "kind=other"])
def test_bad_query_parameters_are_a_422(portal, query):
    response = portal.client.get(f"/api/v1/reports?{query}", headers=portal.headers())
    assert response.status_code == 422 and isinstance(response.json()["detail"], str)


def test_a_huge_id_is_a_422_not_a_database_error(portal):
    response = portal.client.get(f"/api/v1/problems/{2**70}", headers=portal.headers())
    assert response.status_code == 422
