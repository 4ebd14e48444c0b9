"""Uploads as a node makes them: stored once, grouped into problems, listed back (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from acceldoctor.portal.db.models import Event, ResultMetric, ResultRow, StoredReport

from .conftest import DEVICE_MODEL, failing, make_report

OOM_FINDING = {"id": "cuda.out_of_memory", "category": "device_oom", "title": "CUDA out of memory",
               "severity": "error", "file": "rank0.log", "line": 12, "count": 3,
               "excerpt": "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"}


def explain_document(*findings: dict, unrecognized: list | None = None) -> dict:
    return {"schema": "acceldoctor.explain/1", "files": ["rank0.log"], "findings": list(findings),
            "root_cause": None, "unrecognized": unrecognized or [], "exit_code": 1}


def compare_document(equivalent: bool = False) -> dict:
    first = None if equivalent else {
        "key": "layers.3.attn/forward/output", "module_or_op": "layers.3.attn", "direction": "forward",
        "metrics": {"rel_l2_error": "nan"}, "verdict": "beyond the rounding of bfloat16 (12.3x tolerance)"}
    return {"schema": "acceldoctor.compare/1", "equivalent": equivalent,
            "runs": {"a": {"path": "run_a", "device": "cpu", "dtype": "float32"},
                     "b": {"path": "run_b", "device": "cuda:0", "dtype": "bfloat16"}},
            "first_divergence": first, "divergences": [first] if first else [], "unmatched": {}}


def test_the_same_report_uploaded_twice_is_stored_once(portal):
    report = make_report(results=[failing()])
    first, again = portal.upload(report), portal.upload(report)
    assert first.status_code == 201 and first.json()["stored"] is True
    assert again.status_code == 200 and again.json()["stored"] is False
    assert first.json()["run_id"] == again.json()["run_id"] == report["run_id"]
    listed = portal.get("/api/v1/reports")
    assert listed["total"] == 1 and [r["run_id"] for r in listed["items"]] == [report["run_id"]]
    assert (portal.count(StoredReport), portal.count(ResultRow), portal.count(ResultMetric), portal.count(Event)) \
        == (1, 1, 1, 1)
    assert portal.get("/api/v1/problems")["items"][0]["count"] == 1


def test_another_document_under_a_stored_run_id_is_a_conflict_not_a_silent_drop(portal):
    report = make_report(results=[failing()])
    assert portal.upload(report).status_code == 201
    changed = make_report(run_id=report["run_id"], results=[failing(message="another failure")])
    answer = portal.upload(changed)
    assert answer.status_code == 409 and "already stored" in answer.json()["detail"], answer.text
    assert portal.count(StoredReport) == 1 and portal.count(Event) == 1


def test_a_report_may_not_take_an_id_the_portal_derives_for_explain_results(portal):
    # otherwise a node could take the id of another node's explain result before it is uploaded
    answer = portal.upload(make_report(run_id="explain-" + "0" * 32))
    assert answer.status_code == 422 and "explain results" in answer.json()["detail"], answer.text
    assert portal.count(StoredReport) == 0


def test_one_failure_on_two_nodes_is_one_problem_with_both_nodes(portal):
    # Different devices, numbers and durations in the message: the same failure all the same.
    a = make_report("node-a", results=[failing(device="cuda:0")])
    b = make_report("node-b", results=[failing(device="cuda:1", message="float16 matmul wrong at element (9, 2) on "
                                                                        "cuda:1: off by 17 ULPs after 3.1 s")])
    assert portal.upload(a).json()["problems"][0]["new"] is True
    assert portal.upload(b).json()["problems"][0]["new"] is False
    problems = portal.get("/api/v1/problems")
    assert problems["total"] == 1
    problem = problems["items"][0]
    assert (problem["count"], problem["node_count"], problem["device_count"]) == (2, 2, 2)
    assert problem["device_model"] == DEVICE_MODEL and problem["key"] == "correctness.matmul"
    assert problem["status"] == "open"
    detail = portal.get(f"/api/v1/problems/{problem['id']}")
    assert {(s["host"], s["device"]) for s in detail["sightings"]} == {("node-a", "cuda:0"), ("node-b", "cuda:1")}
    assert detail["software"] == ["torch 2.13.0, cuda 12.4, driver 550.54"]
    assert {e["host"] for e in detail["recent_events"]} == {"node-a", "node-b"}
    assert portal.get("/api/v1/problems", host="node-b")["total"] == 1
    assert portal.get("/api/v1/problems", host="node-c")["total"] == 0


def test_different_failures_are_different_problems(portal):
    portal.upload(make_report("n1", results=[failing(), failing("correctness.softmax")]))
    portal.upload(make_report("n2", results=[failing()], model="Other Chip"))
    portal.upload(make_report("n3", results=[("correctness.matmul", "cuda:0", "timeout", "hung after 60 s")]))
    assert portal.get("/api/v1/problems")["total"] == 4


def test_passing_warning_and_erroring_results_are_no_problem(portal):
    rows = [("a.pass", "cuda:0", "pass", "ok"), ("a.warn", "cuda:0", "warn", "slow"),
            ("a.skip", "cuda:0", "skip", "n/a"), ("a.error", "cuda:0", "error", "could not run")]
    assert portal.upload(make_report(results=rows)).json()["events"] == 0
    assert portal.get("/api/v1/problems")["total"] == 0


def test_a_resolved_problem_that_comes_back_has_regressed(portal):
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    portal.upload(make_report("n1", results=[failing()], started_at=start))
    problem_id = portal.get("/api/v1/problems")["items"][0]["id"]
    changed = portal.client.patch(f"/api/v1/problems/{problem_id}", json={"status": "resolved"},
                                  headers=portal.headers("engineer"))
    assert changed.status_code == 200 and changed.json()["status"] == "resolved"
    # A report from before the fix, uploaded late, does not reopen it...
    late = portal.upload(make_report("n2", results=[failing()], started_at=start + timedelta(minutes=5)))
    assert late.json()["problems"][0]["status"] == "resolved"
    # ...a new occurrence does.
    again = portal.upload(make_report("n1", results=[failing()], started_at=datetime.now(timezone.utc)))
    assert again.json()["problems"][0]["status"] == "regressed"
    problem = portal.get(f"/api/v1/problems/{problem_id}")
    assert problem["status"] == "regressed" and problem["count"] == 3
    assert portal.get("/api/v1/problems", status="regressed")["total"] == 1


def test_explain_and_compare_results_are_stored_once_per_node(portal):
    document = explain_document(OOM_FINDING, unrecognized=[
        {"template": "FATAL: fabric link <NUM> down", "count": 4, "examples": ["FATAL: fabric link 3 down"]}])
    first = portal.upload(document, host="node-a")
    assert first.status_code == 201 and first.json()["kind"] == "explain" and first.json()["events"] == 2
    assert portal.upload(document, host="node-a").json()["stored"] is False
    assert portal.upload(document, host="node-b").json()["stored"] is True
    divergent = portal.upload(compare_document(), host="node-a")
    assert divergent.status_code == 201 and divergent.json()["events"] == 1
    assert portal.upload(compare_document(), host="node-a").json()["stored"] is False
    assert portal.upload(compare_document(equivalent=True), host="node-a").json()["events"] == 0
    kinds = {p["kind"]: p for p in portal.get("/api/v1/problems")["items"]}
    assert set(kinds) == {"finding", "unrecognized", "divergence"}
    assert kinds["finding"]["key"] == "cuda.out_of_memory" and kinds["finding"]["node_count"] == 2
    assert kinds["divergence"]["device_model"] == "cpu float32 vs cuda bfloat16"
    assert portal.get("/api/v1/reports")["total"] == 4


def test_reports_are_paged_with_a_total_and_read_back_verbatim(portal):
    reports = [make_report(f"node-{i}") for i in range(5)]
    for report in reports:
        portal.upload(report)
    page = portal.get("/api/v1/reports", limit=2, offset=1)
    assert page["total"] == 5 and page["limit"] == 2 and len(page["items"]) == 2
    everything = {r["run_id"] for r in portal.get("/api/v1/reports", limit=10)["items"]}
    assert everything == {r["run_id"] for r in reports}
    assert portal.get("/api/v1/reports", host="node-3")["total"] == 1
    stored = portal.get(f"/api/v1/reports/{reports[0]['run_id']}")
    assert stored["document"] == reports[0] and stored["host"] == "node-0" and stored["kind"] == "check"
    assert portal.client.get("/api/v1/reports/nope", headers=portal.headers()).status_code == 404


def test_nodes_and_devices_with_the_latest_report(portal):
    now = datetime.now(timezone.utc)
    newer = make_report("node-a", started_at=now, results=[failing()])
    older = make_report("node-a", started_at=now - timedelta(days=1))
    portal.upload(newer)
    portal.upload(older)  # uploaded last, started first: not the latest
    portal.upload(make_report("node-b", stress=True))
    nodes = portal.get("/api/v1/nodes")
    assert [n["hostname"] for n in nodes["items"]] == ["node-a", "node-b"]
    node_a = portal.get("/api/v1/nodes/node-a")
    assert node_a["latest_report"]["run_id"] == newer["run_id"] and node_a["report_count"] == 2
    assert [d["device"] for d in node_a["devices"]] == ["cuda:0", "cuda:1"] and node_a["open_problems"] == 1
    assert portal.get("/api/v1/nodes/node-b")["latest_report"]["kind"] == "stress"
    devices = portal.get("/api/v1/devices", model=DEVICE_MODEL)
    assert devices["total"] == 4 and {d["host"] for d in devices["items"]} == {"node-a", "node-b"}


def test_metrics_are_rows_for_trends(portal):
    portal.upload(make_report("node-a"))
    portal.upload(make_report("node-a"))
    from sqlalchemy import select

    with portal.database.read_session() as session:
        values = session.execute(select(ResultMetric.check, ResultMetric.name, ResultMetric.device_model,
                                        ResultMetric.value)).all()
    assert values == [("correctness.matmul", "tflops", DEVICE_MODEL, 12.5)] * 2


def test_script_in_text_is_stored_verbatim_and_returned_escaped(portal):
    script = "<script>alert('x')</script> & \"quotes\" \\ \u00e9"
    report = make_report(host="node-<b>", results=[failing(message=script)])
    portal.upload(report)
    response = portal.client.get("/api/v1/problems", headers=portal.headers())
    assert "<script>" not in response.text and "<b>" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    problem = response.json()["items"][0]
    assert problem["example"] == script
    stored = portal.get(f"/api/v1/reports/{report['run_id']}")
    assert stored["document"]["results"][0]["message"] == script and stored["host"] == "node-<b>"


def test_nul_characters_and_long_strings_are_stored_on_every_backend(portal):
    # a hostname as long as the column holds (longer ones are refused: test_identifiers.py)
    report = make_report(host="n" * 255, results=[failing(message="bad\u0000byte"), failing("x" * 300)])
    response = portal.upload(report)
    assert response.status_code == 201, response.text
    assert portal.get("/api/v1/problems")["total"] == 2
    assert portal.get(f"/api/v1/nodes/{'n' * 255}")["report_count"] == 1


def test_nan_in_a_metric_is_stored_as_null(portal):
    report = make_report()
    body = portal.client.post("/api/v1/reports", content=_json_with_nan(report), headers={
        **portal.headers("uploader"), "Content-Type": "application/json"})
    assert body.status_code == 201, body.text
    stored = portal.get(f"/api/v1/reports/{report['run_id']}")
    assert stored["document"]["results"][0]["metrics"][0]["value"] is None


def _json_with_nan(report: dict) -> bytes:
    import json

    report["results"][0]["metrics"][0]["value"] = float("nan")
    return json.dumps(report).encode()  # Python writes NaN, as a careless client would


def test_a_real_explain_result_is_accepted(portal, tmp_path):
    """What `acceldoctor explain --json` writes today, so that the upload schema cannot drift from it."""
    import json

    from acceldoctor.explain.knowledge import load_knowledge_base
    from acceldoctor.explain.report import explain_exit_code, explain_json
    from acceldoctor.explain.rootcause import find_root_cause
    from acceldoctor.explain.scan import scan

    log = tmp_path / "rank0.log"
    log.write_text("RuntimeError: CUDA error: an illegal memory access was encountered\nFATAL: odd thing 42\n")
    result = scan([log], load_knowledge_base())
    document = json.loads(explain_json(result, find_root_cause(result.findings, result.ranks_seen),
                                       explain_exit_code(result)))
    response = portal.upload(document, host="node-a")
    assert response.status_code == 201, response.text
    assert response.json()["events"] == 2
