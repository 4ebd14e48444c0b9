"""The portal's server-rendered pages with FastAPI's TestClient, on SQLite and PostgreSQL: each page with data and
empty, login and public read, roles and CSRF on every form that writes, and the fleet page's bounded queries.
(Escaping of injected text: test_pages_escaping.py; a real browser: browser/.)"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from sqlalchemy import event

from acceldoctor.portal.db.models import Comment, Feedback, Problem
from acceldoctor.portal.web.session import COOKIE, csrf_token

from .conftest import failing, make_report

LIST_PAGES = ["/", "/problems", "/feedback", "/feedback/new", "/fleet/metric"]


def gemm_report(host: str, tflops: float, *, model: str = "Acme Tensor X1", status: str = "pass",
                started_at: datetime | None = None) -> dict:
    report = make_report(host, results=[("performance.gemm", "cuda:0", status, "gemm runs at 90% of peak")],
                         model=model, started_at=started_at)
    report["results"][0]["metrics"][0]["value"] = tflops
    return report


def page(portal, path: str, role: str | None = "admin", status: int = 200) -> str:
    response = portal.client.get(path, headers=portal.headers(role), follow_redirects=False)
    assert response.status_code == status, (path, response.status_code, response.text[-2000:])
    return response.text


def csrf_of(portal, role: str) -> str:
    return csrf_token(portal.tokens[role])


def test_every_page_renders_empty(portal):
    for path in LIST_PAGES:
        response = portal.client.get(path, headers=portal.headers())
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert '<nav class="topnav"' in response.text
    assert "No reports yet: run <code>acceldoctor check --upload URL</code>" in page(portal, "/")
    assert "No problem" in page(portal, "/problems")
    assert "No feedback yet" in page(portal, "/feedback")
    page(portal, "/nodes/nowhere", status=404)
    page(portal, "/problems/7", status=404)
    page(portal, "/reports/nothing", status=404)


def test_pages_show_the_fleet(portal):
    now = datetime.now(timezone.utc)
    for day in (3, 2, 1):  # a trend: three runs on node-a
        uploaded = portal.upload(gemm_report("node-a", 100.0 + day, started_at=now - timedelta(days=day)))
        assert uploaded.status_code == 201
    for k, value in enumerate((101.0, 99.0, 100.5, 40.0)):  # node-e is the slow one
        portal.upload(gemm_report(f"node-{'bcde'[k]}", value))
    portal.upload(make_report("node-f", results=[failing()]))
    old = make_report("node-g", started_at=now - timedelta(days=30))
    portal.upload(old)
    from acceldoctor.portal.db.models import Node

    with portal.database.write_session() as session:  # node-g went silent a month ago
        session.query(Node).filter(Node.hostname == "node-g").update({"last_seen": now - timedelta(days=30)})
        session.commit()

    fleet = page(portal, "/")
    for host in ("node-a", "node-e", "node-f", "node-g"):
        assert f'href="/nodes/{host}"' in fleet
    cards = {label: int(n) for n, label in re.findall(r'card-count">(\d+)</span><span class="card-label">([\w ]+)<',
                                                       fleet)}
    assert cards["healthy"] == 5 and cards["problem"] == 1 and cards["stale"] == 1 and cards["all nodes"] == 7
    assert fleet.index('href="/nodes/node-f"') < fleet.index('href="/nodes/node-a"')  # worst first
    assert "Acme Tensor X1" in fleet
    only_problem = page(portal, "/?health=problem")
    assert 'href="/nodes/node-f"' in only_problem and 'href="/nodes/node-a"' not in only_problem

    node = page(portal, "/nodes/node-a")
    assert "performance.gemm tflops (float32)" in node and "<svg" in node and "<polyline" in node
    assert "/fleet/metric?check=performance.gemm&amp;metric=tflops&amp;dtype=float32" in node
    assert node.count('<a href="/reports/') >= 3
    failing_node = page(portal, "/nodes/node-f")
    assert "float16 matmul wrong" in failing_node and 'href="/problems/' in failing_node

    metric = page(portal, "/fleet/metric?check=performance.gemm&metric=tflops&dtype=float32")
    outliers = metric[metric.index("<h2>Outliers</h2>"):]
    assert 'href="/nodes/node-e"' in outliers and 'href="/nodes/node-b"' not in outliers
    assert 'class="outlier"' in metric and "below the median" in outliers
    assert "performance.gemm tflops (float32)" in page(portal, "/fleet/metric")

    problems = page(portal, "/problems")
    problem_id = int(re.search(r'href="/problems/(\d+)"', problems).group(1))
    assert "correctness.matmul" in problems
    assert "correctness.matmul" in page(portal, "/problems?status=open")
    assert "correctness.matmul" not in page(portal, "/problems?status=resolved")
    detail = page(portal, f"/problems/{problem_id}")
    assert 'href="/nodes/node-f"' in detail and "0 feedback reports" in detail

    run_id = re.search(r'href="/reports/([^"]+)"', failing_node).group(1)
    report = page(portal, f"/reports/{run_id}")
    assert "problems found" in report and 'class="verdict verdict-bad"' in report  # the shared macro
    assert '<link rel="stylesheet" href="/static/report.css">' in report


def test_explain_and_compare_reports_are_readable(portal):
    from .test_ingest import explain_document

    finding = {"id": "cuda-oom", "category": "device_oom", "title": "CUDA out of memory", "severity": "error",
               "file": "train.log", "line": 7, "excerpt": "torch.OutOfMemoryError: CUDA out of memory"}
    assert portal.upload(explain_document(finding), host="node-x").status_code == 201
    run_id = portal.get("/api/v1/reports")["items"][0]["run_id"]
    shown = page(portal, f"/reports/{run_id}")
    assert "CUDA out of memory" in shown and "train.log:7" in shown


def test_static_assets_are_served_without_login(portal):
    for name, kind in (("portal.css", "text/css"), ("report.css", "text/css"), ("htmx.min.js", "text/javascript")):
        response = portal.client.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    assert portal.client.get("/static/..%2Fsession.py").status_code == 404
    assert "htmx 2.0.11" in portal.client.get("/static/htmx.min.js").text[:200]


def test_pages_need_a_login_unless_public_read(make_portal):
    private = make_portal()
    for path in LIST_PAGES[:3] + ["/problems/1", "/nodes/x"]:
        response = private.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == f"/login?next={quote(path, safe='')}"
    assert private.client.get("/api/v1/problems").status_code == 401  # the API keeps its 401
    private.client.cookies.set(COOKIE, "adp_nope_nope")
    bad = private.client.get("/", follow_redirects=False)
    assert bad.status_code == 303 and 'acceldoctor_token=""' in bad.headers.get("set-cookie", "")
    public = make_portal(public_read=True)
    public.client.cookies.clear()
    assert public.client.get("/", follow_redirects=False).status_code == 200
    assert "reading without login" in public.client.get("/problems").text
    # the login page's "continue without logging in" link goes to `next` only when it is a path here
    assert 'href="/problems"' in public.client.get("/login?next=/problems").text
    for evil in ("/%09/evil.example/x", "//evil.example", "/%0a/evil.example"):
        page = public.client.get(f"/login?next={evil}").text
        assert "evil.example" not in page, evil


def _problem(portal) -> int:
    portal.upload(make_report("node-a", results=[failing()]))
    with portal.database.read_session() as session:
        return session.query(Problem).one().id


def _state(portal, problem_id: int) -> tuple:
    with portal.database.read_session() as session:
        return (session.get(Problem, problem_id).status, session.query(Comment).count(),
                session.query(Feedback).count())


def _login(portal, role: str):
    portal.client.cookies.clear()
    portal.client.cookies.set(COOKIE, portal.tokens[role])


def test_forms_that_write_need_the_role_and_the_csrf_token(make_portal):
    portal = make_portal(public_read=True)
    problem_id = _problem(portal)
    before = _state(portal, problem_id)
    status, comment = f"/problems/{problem_id}/status", f"/problems/{problem_id}/comments"
    feedback = "/feedback/new"

    def post(path: str, fields: dict, expected: int):
        response = portal.client.post(path, data=fields, follow_redirects=False)
        assert response.status_code == expected, (path, fields, response.text[-500:])
        return response

    portal.client.cookies.clear()  # anonymous reader (--public-read): sent to log in, nothing changes
    assert post(status, {"status": "resolved"}, 303).headers["location"].startswith("/login?next=")
    post(feedback, {"title": "anonymous"}, 303)
    _login(portal, "uploader")  # uploader: may file feedback, may not triage
    post(status, {"status": "resolved", "csrf_token": csrf_of(portal, "uploader")}, 403)
    post(comment, {"body": "hi", "csrf_token": csrf_of(portal, "uploader")}, 403)
    post(feedback, {"title": "no csrf"}, 403)
    _login(portal, "engineer")  # engineer without, or with someone else's, CSRF token
    for token in ("", "0" * 64, csrf_of(portal, "uploader")):
        post(status, {"status": "resolved", "csrf_token": token}, 403)
        post(comment, {"body": "hi", "csrf_token": token}, 403)
    # a Bearer header with another token does not borrow the cookie's CSRF token
    response = portal.client.post(status, data={"status": "resolved", "csrf_token": csrf_of(portal, "engineer")},
                                  headers=portal.headers("admin"), follow_redirects=False)
    assert response.status_code == 403
    assert _state(portal, problem_id) == before

    post(status, {"status": "resolved", "csrf_token": csrf_of(portal, "engineer")}, 303)
    post(status, {"status": "regressed", "csrf_token": csrf_of(portal, "engineer")}, 400)
    post(comment, {"body": "looking at it", "csrf_token": csrf_of(portal, "engineer")}, 303)
    portal.client.headers["x-csrf-token"] = csrf_of(portal, "engineer")  # htmx's header works as the field does
    post(comment, {"body": "via header"}, 303)
    del portal.client.headers["x-csrf-token"]
    assert _state(portal, problem_id) == ("resolved", 2, 0)
    shown = portal.client.get(f"/problems/{problem_id}").text
    assert "looking at it" in shown and "engineer tester" in shown and "Change status" in shown


PAGE_WRITES_WITHOUT_LOGIN = {"/login"}  # logging in needs no login (it has its own lock: test_pages_login.py)


def _page_write_routes(app) -> list[str]:
    from fastapi.routing import APIRoute

    def walk(routes):
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)

    return sorted({r.path_format for r in walk(app.routes) if r.methods & {"POST", "PUT", "PATCH", "DELETE"}
                   and not r.path_format.startswith("/api/")} - PAGE_WRITES_WITHOUT_LOGIN)


def test_every_page_form_needs_a_login_and_its_csrf_token(portal):
    """Taken from the route table, so a form added later is held to the same rule."""
    problem_id = _problem(portal)
    before = _state(portal, problem_id)
    routes = _page_write_routes(portal.app)
    assert {"/feedback/new", "/problems/{problem_id}/status", "/problems/{problem_id}/comments"} <= set(routes)
    fields = {"status": "resolved", "body": "x", "title": "x"}
    for route in routes:
        path = route.replace("{problem_id}", str(problem_id))
        portal.client.cookies.clear()
        stranger = portal.client.post(path, data=fields, follow_redirects=False)
        assert stranger.status_code == 303 and stranger.headers["location"].startswith("/login"), route
        _login(portal, "admin")
        for token in ("", csrf_of(portal, "uploader")):
            assert portal.client.post(path, data={**fields, "csrf_token": token}).status_code == 403, route
    assert _state(portal, problem_id) == before


def test_feedback_form_links_to_the_problem(portal):
    problem_id = _problem(portal)
    run_id = portal.get("/api/v1/reports")["items"][0]["run_id"]
    _login(portal, "uploader")
    assert "Change status" not in portal.client.get(f"/problems/{problem_id}").text
    form = portal.client.get(f"/feedback/new?run_id={run_id}").text
    assert f'value="{run_id}"' in form
    fields = {"title": "matmul wrong", "description": "fp16", "severity": "high", "report_run_id": run_id,
              "csrf_token": csrf_of(portal, "uploader")}
    bad = portal.client.post("/feedback/new", data={**fields, "log_excerpt": "x"}, follow_redirects=False)
    assert bad.status_code == 400 and "not both" in bad.text and "matmul wrong" in bad.text
    missing = portal.client.post("/feedback/new", data={**fields, "report_run_id": "nope"}, follow_redirects=False)
    assert missing.status_code == 400 and "No report with run id" in missing.text
    assert portal.client.post("/feedback/new", data={**fields, "title": ""}, follow_redirects=False).status_code == 400
    done = portal.client.post("/feedback/new", data=fields, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/feedback/")
    detail = portal.client.get(done.headers["location"]).text
    assert "matmul wrong" in detail and f'href="/problems/{problem_id}"' in detail
    assert "1 feedback report<" in portal.client.get(f"/problems/{problem_id}").text
    assert "(1 feedback)" in portal.client.get("/feedback").text


def test_the_fleet_page_queries_do_not_grow_with_the_fleet(portal):
    """No query per node: the fleet page makes the same number of queries for 3 nodes as for 30."""
    def queries_for_fleet() -> int:
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(portal.database.engine, "before_cursor_execute", listener)
        try:
            page(portal, "/")
        finally:
            event.remove(portal.database.engine, "before_cursor_execute", listener)
        return len(statements)

    for k in range(3):
        portal.upload(gemm_report(f"small-{k}", 100.0))
    few = queries_for_fleet()
    for k in range(27):
        portal.upload(gemm_report(f"more-{k}", 100.0) if k % 3 else make_report(f"more-{k}", results=[failing()]))
    assert queries_for_fleet() == few


def test_the_fleet_table_is_paginated(portal):
    for k in range(55):
        portal.upload(make_report(f"n{k:03d}"))
    first, last = page(portal, "/"), page(portal, "/?offset=50")
    assert first.count('class="node-row"') == 50 and "1–50 of 55" in first and 'href="/?offset=50"' in first
    assert last.count('class="node-row"') == 5 and "51–55 of 55" in last and 'href="/nodes/n054"' in last


def _problems_shown(html: str) -> list[str]:
    return re.findall(r'<a href="/problems/\d+"><strong>([^<]+)</strong>', html)


def test_the_fleet_counts_every_unresolved_problem_and_links_to_them(portal):
    """An operator reads the card as "problems someone still has to deal with": open, acknowledged and regressed
    all count, resolved does not; the card's link lists the same problems, and so does a node's count."""
    checks = {"check.open": "open", "check.acknowledged": "acknowledged", "check.regressed": "regressed",
              "check.resolved": "resolved"}
    portal.upload(make_report("node-a", results=[failing(check) for check in checks]))
    with portal.database.write_session() as session:
        for problem in session.query(Problem):
            problem.status = checks[problem.key]
        session.commit()
    fleet = page(portal, "/")
    card = re.search(r'<a class="card card-problems" href="([^"]+)"[^>]*><span class="card-count">(\d+)</span>'
                     r'<span class="card-label">([^<]+)</span>', fleet)
    assert card.group(2, 3) == ("3", "unresolved problems")
    listed = page(portal, card.group(1).replace("&amp;", "&"))
    assert sorted(_problems_shown(listed)) == ["check.acknowledged", "check.open", "check.regressed"]
    assert '<option value="unresolved" selected>' in listed
    node_link = re.search(r'<td class="num"><a href="(/problems\?[^"]+)">(\d+)</a></td>', fleet)
    assert node_link.group(2) == "3" and "unresolved problems" in fleet
    assert len(_problems_shown(page(portal, node_link.group(1).replace("&amp;", "&")))) == 3


def test_the_problems_list_filters_by_status_kind_and_device_model_and_pages(portal):
    from .test_ingest import compare_document

    portal.upload(make_report("node-x1", results=[failing(f"x1.check{k:02d}") for k in range(52)]))
    portal.upload(make_report("node-y2", model="Other Chip Y2", results=[failing("y2.check")]))
    portal.upload(compare_document(), host="node-x1")
    everything = page(portal, "/problems")
    assert "54 problems" in everything and everything.count('class="problem-row"') == 50
    assert '<option value="Other Chip Y2">' in everything and '<option value="divergence">' in everything
    y2 = page(portal, "/problems?model=Other+Chip+Y2")
    assert _problems_shown(y2) == ["y2.check"] and '<option value="Other Chip Y2" selected>' in y2
    assert _problems_shown(page(portal, "/problems?kind=divergence")) == ["layers.3.attn"]
    x1 = page(portal, "/problems?status=open&kind=result&model=Acme+Tensor+X1")
    assert "52 problems" in x1 and "1–50 of 52" in x1
    next_page = re.search(r'<a href="([^"]+)">next</a>', x1).group(1).replace("&amp;", "&")
    assert next_page == "/problems?status=open&kind=result&model=Acme+Tensor+X1&offset=50"
    second = page(portal, next_page)
    assert len(_problems_shown(second)) == 2 and "51–52 of 52" in second
    assert set(_problems_shown(second)) | set(_problems_shown(x1)) == {f"x1.check{k:02d}" for k in range(52)}
    assert "No problem matches these filters" in page(portal, "/problems?status=resolved&kind=result")
    assert "54 problems" in page(portal, "/problems?status=&kind=&model=")  # the form's "any": no filter
