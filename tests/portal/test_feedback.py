"""Feedback is linked to the problems its attachment matches, so engineers see how many hit the same thing."""

from __future__ import annotations

from acceldoctor.explain.knowledge import load_knowledge_base

from .conftest import failing, make_report
from .test_ingest import explain_document


def _known_error():
    entry = next(e for e in load_knowledge_base() if e.examples)
    finding = {"id": entry.id, "category": entry.category, "title": entry.title, "severity": entry.severity,
               "file": "train.log", "line": 7, "excerpt": entry.examples[0]}
    return entry, finding


def test_feedback_with_a_report_links_to_its_problems(portal):
    portal.upload(make_report("node-a", results=[failing()]))
    portal.upload(make_report("node-b", results=[failing()]))
    mine = make_report("laptop", results=[failing(device="cuda:1", message=failing()[3].replace("3, 17", "5, 5"))])
    filed = portal.client.post("/api/v1/feedback", headers=portal.headers("uploader"), json={
        "title": "matmul is wrong on X1", "description": "fp16 only", "severity": "high", "report": mine})
    assert filed.status_code == 201, filed.text
    linked = filed.json()["problems"]
    assert len(linked) == 1 and linked[0]["node_count"] == 2 and linked[0]["feedback_count"] == 1
    problem = portal.get(f"/api/v1/problems/{linked[0]['id']}")
    assert [f["title"] for f in problem["feedback"]] == ["matmul is wrong on X1"]
    assert portal.get("/api/v1/feedback")["total"] == 1
    # The attached report is the developer's, not the fleet's: no node, no event from it.
    assert problem["count"] == 2 and portal.get("/api/v1/nodes")["total"] == 2


def test_a_log_excerpt_is_scanned_for_known_errors(portal):
    entry, finding = _known_error()
    portal.upload(explain_document(finding), host="node-a")
    log = f"step 10 loss 2.3\n[rank0]: {entry.examples[0]}\nFATAL: fabric link 7 down\n"
    filed = portal.client.post("/api/v1/feedback", headers=portal.headers("uploader"), json={
        "title": "training died", "log_excerpt": log})
    body = filed.json()
    assert filed.status_code == 201 and body["fingerprints"] == 2 and body["attachment_kind"] == "log"
    assert [p["key"] for p in body["problems"]] == [entry.id]
    detail = portal.get(f"/api/v1/feedback/{body['id']}")
    assert detail["attachment"] == log


def test_feedback_filed_before_the_problem_is_linked_when_it_appears(portal):
    entry, finding = _known_error()
    filed = portal.client.post("/api/v1/feedback", headers=portal.headers("uploader"), json={
        "title": "first to hit it", "log_excerpt": entry.examples[0]}).json()
    assert filed["problems"] == [] and filed["fingerprints"] == 1
    portal.upload(explain_document(finding), host="node-a")
    assert [p["key"] for p in portal.get(f"/api/v1/feedback/{filed['id']}")["problems"]] == [entry.id]
    assert portal.get("/api/v1/problems")["items"][0]["feedback_count"] == 1


def test_bad_feedback_is_refused(portal):
    headers = portal.headers("uploader")
    for body in ({"title": ""}, {"title": "x" * 201}, {"title": "t", "severity": "urgent"},
                 {"title": "t", "colour": "red"}, {"title": "t", "log_excerpt": "x", "report": make_report()}):
        response = portal.client.post("/api/v1/feedback", headers=headers, json=body)
        assert response.status_code == 422, body
    assert portal.get("/api/v1/feedback")["total"] == 0
