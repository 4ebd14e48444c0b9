"""Script injected into any text a user controls is shown as text on every page, never as markup: a report's
message, hostname and device name, a feedback's title, description and log excerpt, a comment, an explain finding."""

from __future__ import annotations

import re

from acceldoctor.portal.web.session import COOKIE, csrf_token

from .conftest import make_report
from .test_ingest import compare_document, explain_document

PAYLOADS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
# What must never appear in a page: an element or attribute the payload would create if it were not escaped.
DANGEROUS = re.compile(r"<script>alert|<img src=x|onerror=alert\(1\)>")


def injected(label: str, payload: str) -> str:
    return f"{label} {payload}"


def injected_hostname(k: int, payload: str) -> str:
    """A hostname may not hold "/" (it is a URL path segment; the upload refuses it), so its script is unclosed."""
    return injected(f"host{k}", payload.replace("/", ""))


def assert_escaped(html: str, *, expect_shown: bool = True) -> None:
    assert not DANGEROUS.search(html), DANGEROUS.search(html).group(0)
    if expect_shown:
        shown = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;",
                 "&lt;script&gt;alert(1)&lt;script&gt;")  # the last: in a hostname (injected_hostname)
        assert any(text in html for text in shown)


def test_injected_text_is_escaped_on_every_page(portal):
    hosts = []
    for k, payload in enumerate(PAYLOADS):
        host = injected_hostname(k, payload)
        hosts.append(host)
        report = make_report(host, model=injected("model", payload),
                             results=[("performance.gemm", "cuda:0", "fail", injected("message", payload))])
        report["devices"][0]["driver_version"] = injected("driver", payload)
        report["host"]["stack"] = {"cuda": injected("stack", payload)}
        assert portal.upload(report).status_code == 201
        finding = {"id": "cuda-oom", "category": "device_oom", "title": injected("finding", payload),
                   "severity": "error", "file": injected("file", payload), "line": 1, "excerpt": payload}
        portal.upload(explain_document(finding), host=host)
        portal.upload(compare_document(), host=host)
    portal.client.cookies.set(COOKIE, portal.tokens["engineer"])
    csrf = csrf_token(portal.tokens["engineer"])
    run_ids = [r["run_id"] for r in portal.get("/api/v1/reports", limit=50)["items"]]
    problems = [p["id"] for p in portal.get("/api/v1/problems")["items"]]
    for k, payload in enumerate(PAYLOADS):
        for problem_id in problems:
            assert portal.client.post(f"/problems/{problem_id}/comments", follow_redirects=False, data={
                "body": injected("comment", payload), "csrf_token": csrf}).status_code == 303
        for attach in ({"log_excerpt": injected("FATAL log", payload)}, {"report_run_id": run_ids[k]}):
            filed = portal.client.post("/feedback/new", follow_redirects=False, data={
                "title": injected("title", payload), "description": injected("description", payload),
                "host": injected("filer", payload), "csrf_token": csrf, **attach})
            assert filed.status_code == 303, filed.text[-500:]
    feedback_ids = [f["id"] for f in portal.get("/api/v1/feedback")["items"]]
    assert len(feedback_ids) == 4 and len(problems) >= 2

    from urllib.parse import quote

    pages = ["/", "/?health=problem", "/problems", "/feedback", "/fleet/metric",
             "/fleet/metric?check=performance.gemm&metric=tflops&dtype=float32",
             *(f"/nodes/{quote(h, safe='')}" for h in hosts), *(f"/problems/{p}" for p in problems),
             *(f"/feedback/{f}" for f in feedback_ids), *(f"/reports/{quote(r, safe='')}" for r in run_ids),
             f"/problems?host={quote(hosts[0])}", f"/feedback/new?run_id={quote(PAYLOADS[1])}",
             f"/login?next={quote('/' + PAYLOADS[1])}", f"/nodes/{quote(PAYLOADS[0], safe='')}"]
    for path in pages:
        response = portal.client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        shows_user_text = response.status_code == 200 and path not in ("/fleet/metric", pages[-2])
        assert_escaped(response.text, expect_shown=shows_user_text)
    node = portal.client.get(f"/nodes/{quote(hosts[1], safe='')}").text
    for field in ("host1", "model", "message", "driver", "stack"):
        assert f"{field} &#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in node, field
    problem = portal.client.get(f"/problems/{problems[0]}").text
    assert "comment &lt;script&gt;alert(1)&lt;/script&gt;" in problem
    feedback = portal.client.get(f"/feedback/{feedback_ids[-1]}").text
    for field in ("title", "description", "FATAL log", "filer"):
        assert f"{field} &lt;script&gt;alert(1)&lt;/script&gt;" in feedback, field


def test_a_bad_form_shows_what_was_typed_escaped(portal):
    portal.client.cookies.set(COOKIE, portal.tokens["uploader"])
    response = portal.client.post("/feedback/new", data={
        "title": PAYLOADS[1], "description": PAYLOADS[0], "report_run_id": PAYLOADS[0],
        "csrf_token": csrf_token(portal.tokens["uploader"])})
    assert response.status_code == 400
    assert_escaped(response.text)
