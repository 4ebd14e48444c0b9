"""No write without a valid token of a role allowed to write; reads need a token unless --public-read. The write
routes are taken from the app's route table, so a route added later is tested too."""

from __future__ import annotations

import hashlib
import json

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from acceldoctor.portal.app import create_app
from acceldoctor.portal.auth import Role
from acceldoctor.portal.db.models import ApiToken, StoredReport
from acceldoctor.portal.settings import PortalSettings

from .conftest import make_report

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _required_role(route: APIRoute):
    """The role of the route's require(...) dependency; "read" for reader; None when it has neither."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if hasattr(dependency.call, "required_role"):
            return dependency.call.required_role or "read"
        stack.extend(dependency.dependencies)
    return None


def _api_routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.12x keeps included routers as they are
            yield from _api_routes(route.original_router.routes)


def _routes():
    app = create_app(PortalSettings(database_url="sqlite://"))
    for route in _api_routes(app.routes):
        for method in route.methods:
            yield method, route.path_format.replace("{", "").replace("}", ""), _required_role(route)


ROUTES = sorted(set(_routes()))
# The API's writes. The pages' forms (/login, /feedback/new, ...) answer a stranger with a redirect to /login, not 401,
# and check a CSRF token too: test_pages.py enumerates and tests those.
WRITES = [(m, p, r) for m, p, r in ROUTES if m in WRITE_METHODS and p.startswith("/api/")]
READS = [(m, p, r) for m, p, r in ROUTES if m == "GET" and p.startswith(("/api/", "/metrics"))]
UPLOADER_MAY = {("POST", "/api/v1/reports"), ("POST", "/api/v1/feedback")}


def _call(portal, method: str, path: str, headers: dict):
    path = path.replace("problem_id", "1").replace("feedback_id", "1").replace("token_id", "1") \
        .replace("run_id", "r").replace("hostname", "h")
    return portal.client.request(method, path, json={}, headers=headers)


def test_every_write_route_needs_a_role():
    assert WRITES, "no write route found"
    for method, path, role in WRITES:
        assert isinstance(role, Role), f"{method} {path} has no require(Role...) dependency"
        assert (role is Role.UPLOADER) == ((method, path) in UPLOADER_MAY), f"{method} {path}: {role}"


@pytest.mark.parametrize(("method", "path", "role"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_no_write_without_a_valid_token(portal, method, path, role):
    revoked = portal.tokens["admin"]
    with portal.database.write_session() as session:
        session.scalars(select(ApiToken).where(ApiToken.role == "admin")).one().revoked_at = \
            session.scalar(select(ApiToken.created_at).limit(1))
        session.commit()
    for headers in ({}, {"Authorization": "Bearer adp_nope_nope"}, {"Authorization": "Basic dXNlcjpwdw=="},
                    {"Authorization": f"Bearer {revoked}"},
                    {"Authorization": f"Bearer {portal.tokens['uploader']}x"}):
        response = _call(portal, method, path, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    for lower in Role:
        if not lower.allows(role):
            assert _call(portal, method, path, portal.headers(lower.value)).status_code == 403


@pytest.mark.parametrize(("method", "path", "role"), READS, ids=[f"{m} {p}" for m, p, _ in READS])
def test_reads_need_a_token_unless_public_read(make_portal, method, path, role):
    private = make_portal()
    assert _call(private, method, path, {}).status_code == 401
    assert _call(private, method, path, private.headers("uploader")).status_code != 401 or role is Role.ADMIN
    if role == "read":
        public = make_portal(public_read=True)
        assert _call(public, method, path, {}).status_code in (200, 404)
        assert _call(public, method, path, {"Authorization": "Bearer adp_bad_token"}).status_code == 401


def test_a_write_without_a_token_is_refused_before_its_body_is_read(portal):
    response = portal.client.post("/api/v1/reports", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 401 and "token" in response.json()["detail"]


def test_tokens_are_stored_hashed(portal):
    with portal.database.read_session() as session:
        rows = session.scalars(select(ApiToken)).all()
    stored = {r.token_sha256 for r in rows}
    for token in portal.tokens.values():
        assert hashlib.sha256(token.encode()).hexdigest() in stored
        assert all(token not in (r.token_sha256, r.public_id, r.name) for r in rows)


def test_roles_decide_who_changes_problems(portal):
    portal.upload(make_report(results=[("correctness.matmul", "cuda:0", "fail", "wrong")]))
    problem = portal.get("/api/v1/problems")["items"][0]["id"]
    patch = f"/api/v1/problems/{problem}"
    assert portal.client.patch(patch, json={"status": "acknowledged"}, headers=portal.headers("uploader")) \
        .status_code == 403
    assert portal.client.patch(patch, json={"status": "acknowledged"}, headers=portal.headers("engineer")) \
        .json()["status"] == "acknowledged"
    assert portal.client.patch(patch, json={"status": "regressed"}, headers=portal.headers("engineer")) \
        .status_code == 422
    comment = portal.client.post(f"{patch}/comments", json={"body": "looking at it"},
                                 headers=portal.headers("engineer"))
    assert comment.status_code == 201 and comment.json()["author"] == "engineer tester"
    assert [c["body"] for c in portal.get(f"{patch}/comments")] == ["looking at it"]
    assert portal.get(patch)["comments"][0]["body"] == "looking at it"


def test_an_admin_creates_and_revokes_tokens(portal):
    created = portal.client.post("/api/v1/tokens", json={"role": "uploader", "name": "rack 7"},
                                 headers=portal.headers("admin"))
    assert created.status_code == 201
    token = created.json()["token"]
    assert portal.upload(make_report(), role="uploader").status_code == 201
    headers = {"Authorization": f"Bearer {token}"}
    assert portal.client.post("/api/v1/reports", json=make_report(), headers=headers).status_code == 201
    revoked = portal.client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=portal.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert portal.client.post("/api/v1/reports", json=make_report(), headers=headers).status_code == 401
    assert portal.count(StoredReport) == 2
    assert "token" not in portal.get("/api/v1/tokens")[0]


@pytest.mark.parametrize("header", ["x", "Bearer", "Bearer not-a-portal-token", "Basic dXNlcjpwdw=="])
def test_a_header_that_is_no_portal_token_is_refused_before_the_body_is_parsed(portal, header):
    # FastAPI parses a body before the token dependency runs: a stranger got a 422 with validation details
    response = portal.client.post("/api/v1/reports", content=b'{"schema": "acceldoctor.report/1"' + b" " * 100_000,
                                  headers={"Authorization": header, "Content-Type": "application/json"})
    assert response.status_code == 401 and "token" in response.json()["detail"], response.text
    assert portal.count(StoredReport) == 0


@pytest.mark.parametrize("which", ["unknown", "wrong secret", "revoked"])
def test_a_well_shaped_wrong_token_is_refused_before_the_body_is_read(make_portal, which):
    # the token is checked before the body is read: a stranger's 1 MB (or malformed) body gets 401, not 413 or 422
    portal = make_portal(max_body_bytes=4096)
    if which == "unknown":
        token = "adp_0123456789ab_" + "x" * 43
    elif which == "wrong secret":
        token = portal.tokens["uploader"].rsplit("_", 1)[0] + "_" + "x" * 43
    else:
        created = portal.client.post("/api/v1/tokens", json={"role": "uploader"}, headers=portal.headers("admin"))
        token = created.json()["token"]
        assert portal.client.delete(f"/api/v1/tokens/{created.json()['id']}",
                                    headers=portal.headers("admin")).status_code == 200
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in (b'{"schema": "acceldoctor.report/1"' + b" " * 2**20, b"{not json", json.dumps(make_report()).encode()):
        response = portal.client.post("/api/v1/reports", content=body, headers=headers)
        assert response.status_code == 401 and "token" in response.json()["detail"], response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert portal.count(StoredReport) == 0


def test_a_token_whose_role_may_not_write_there_is_refused_before_the_body_is_read(portal):
    portal.upload(make_report(results=[("correctness.matmul", "cuda:0", "fail", "wrong")]))
    problem = portal.get("/api/v1/problems")["items"][0]["id"]
    for body in (b"{not json", b'{"status": "resolved"}'):
        response = portal.client.patch(f"/api/v1/problems/{problem}", content=body, headers={
            **portal.headers("uploader"), "Content-Type": "application/json"})
        assert response.status_code == 403 and "engineer" in response.json()["detail"], response.text
    assert portal.get(f"/api/v1/problems/{problem}")["status"] == "open"
    assert portal.client.patch(f"/api/v1/problems/{problem}", content=b"{not json", headers={
        **portal.headers("engineer"), "Content-Type": "application/json"}).status_code == 422  # may write: body read


def test_the_bearer_scheme_is_case_insensitive_for_writes_as_for_reads(portal):
    # HTTP auth schemes are case-insensitive, and the routes (FastAPI's HTTPBearer) take `bearer`: the check before
    # the body must not refuse what the route would accept
    for scheme in ("bearer", "BEARER", "Bearer "):
        headers = {"Authorization": f"{scheme} {portal.tokens['uploader']}"}
        assert portal.client.get("/api/v1/reports", headers=headers).status_code == 200
        assert portal.client.post("/api/v1/reports", json=make_report(), headers=headers).status_code == 201, scheme
    assert portal.count(StoredReport) == 3
