"""What a person sees when a page cannot be shown or a form is refused, on SQLite and PostgreSQL: an HTML error page
that says which part of the address is wrong (never the API's JSON), and for a form htmx posted, a short message in
the form itself, the page left as it was. The API keeps answering JSON."""

from __future__ import annotations

import html
import re

import pytest

from acceldoctor.portal.web.session import COOKIE, csrf_token

from .conftest import failing, make_report

HTMX = {"HX-Request": "true"}


def error_message(response) -> str:
    """The error page's message, as a person reads it."""
    assert response.headers["content-type"].startswith("text/html"), response.text[:300]
    assert "<!DOCTYPE html>" in response.text and '<nav class="topnav"' in response.text
    return html.unescape(re.search(r'<p class="error-message">(.*?)</p>', response.text, re.S).group(1))


@pytest.mark.parametrize("path, status, words", [
    ("/problems?status=bogus", 400, ["'status'", "'bogus'", "'unresolved', 'open', 'acknowledged'"]),
    ("/problems?kind=nonsense", 400, ["'kind'", "'result', 'finding'"]),
    ("/?health=sick", 400, ["'health'", "'sick'", "'healthy', 'warn'"]),
    ("/?offset=abc", 400, ["'offset'", "a whole number", "'abc'"]),
    ("/?offset=-1", 400, ["'offset'", "at least 0"]),
    ("/nodes/node-a?runs_offset=abc", 400, ["'runs_offset'", "a whole number"]),
    ("/fleet/metric?check=" + "x" * 300 + "&metric=tflops", 400, ["'check'", "at most 255 characters",
                                                                   "300 characters long"]),
    ("/feedback?filed=0", 400, ["'filed'", "at least 1"]),
    ("/problems/abc", 404, ["no such page", "'problem_id'", "a whole number"]),
    ("/reports/" + "r" * 300, 404, ["no such page", "'run_id'"]),
    ("/no/such/page", 404, ["There is no page at /no/such/page"]),
])
def test_a_bad_address_shows_an_error_page_naming_what_is_wrong(portal, path, status, words):
    portal.upload(make_report("node-a"))
    response = portal.client.get(path, headers=portal.headers())
    assert response.status_code == status, response.text[:300]
    message = error_message(response)
    assert all(word in message for word in words), message
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "admin tester (admin)" in response.text  # the header still says who is logged in


def test_a_wrong_method_on_a_page_is_an_error_page(portal):
    for method, path in (("POST", "/"), ("DELETE", "/problems"), ("PUT", "/login")):
        response = portal.client.request(method, path, headers=portal.headers())
        assert response.status_code == 405 and "GET" in response.headers["allow"]
        assert f"does not take a {method} request" in error_message(response)


def test_the_api_keeps_its_json_errors(portal):
    for path, status in (("/api/v1/problems?status=bogus", 422), ("/api/v1/reports?limit=abc", 422),
                         ("/api/v1/nope", 404), ("/api/v1/problems/abc", 422), ("/api", 404)):
        response = portal.client.get(path, headers=portal.headers())
        assert response.status_code == status and response.headers["content-type"] == "application/json", path
        assert isinstance(response.json()["detail"], str)
    assert portal.client.post("/healthz").headers["content-type"] == "application/json"
    assert portal.client.delete("/metrics", headers=portal.headers()).json() == {"detail": "Method Not Allowed"}


# --- forms htmx posts ---------------------------------------------------------------------------------------------

@pytest.fixture
def problem_page(portal):
    """A problem, and its page as an engineer sees it: the forms htmx posts, each with its error slot."""
    portal.upload(make_report("node-a", results=[failing()]))
    problem_id = portal.get("/api/v1/problems")["items"][0]["id"]
    portal.client.cookies.set(COOKIE, portal.tokens["engineer"])
    shown = portal.client.get(f"/problems/{problem_id}").text
    for action in ("status", "comments"):
        form = re.search(rf'<form [^>]*hx-post="/problems/{problem_id}/{action}".*?</form>', shown, re.S).group(0)
        assert '<p class="form-error" role="alert"></p>' in form, form  # where a refusal is shown
    return problem_id


def assert_form_error(response, status: int, *words: str) -> str:
    """A refusal htmx shows in place: just the message, put in place of the posting form's .form-error slot."""
    assert response.status_code == status, response.text[:300]
    assert response.headers["hx-retarget"] == "find .form-error"
    assert response.headers["hx-reswap"] == "outerHTML" and response.headers["hx-reselect"] == ".form-error"
    body = response.text.strip()
    assert body.startswith('<p class="form-error" role="alert">') and "<html" not in body and "<main" not in body
    message = html.unescape(re.sub(r"<[^>]+>", "", body))
    assert all(word in message for word in words), message
    return body


def test_a_refused_htmx_post_is_a_message_in_the_form(portal, problem_page):
    problem_id = problem_page
    status_form, comment_form = f"/problems/{problem_id}/status", f"/problems/{problem_id}/comments"
    engineer_csrf = csrf_token(portal.tokens["engineer"])
    post = lambda path, data, **headers: portal.client.post(  # noqa: E731
        path, data=data, headers={**HTMX, "HX-Current-URL": f"http://testserver/problems/{problem_id}", **headers},
        follow_redirects=False)

    assert_form_error(post(status_form, {"status": "resolved", "csrf_token": "0" * 64}), 403, "security token")
    assert_form_error(post(status_form, {"status": "regressed", "csrf_token": engineer_csrf}), 400,
                      "open, acknowledged or resolved")
    assert_form_error(post(comment_form, {"body": "", "csrf_token": engineer_csrf}), 400, "A comment needs")
    portal.client.cookies.set(COOKIE, portal.tokens["uploader"])  # a role that may not
    assert_form_error(post(status_form, {"status": "resolved", "csrf_token": csrf_token(portal.tokens["uploader"])}),
                      403, "needs the engineer role")
    assert portal.get(f"/api/v1/problems/{problem_id}")["status"] == "open"

    # The login is gone (logged out in another tab): a link back to log in, to this page; what was typed stays.
    portal.client.cookies.clear()
    gone = assert_form_error(post(comment_form, {"body": "typed", "csrf_token": engineer_csrf}), 401, "not logged in",
                             "Log in again")
    assert f'href="/login?next=%2Fproblems%2F{problem_id}"' in gone
    # A saved token that was revoked: the same, and the browser forgets it.
    portal.client.cookies.set(COOKIE, "adp_revoked_token")
    revoked = post(comment_form, {"body": "typed", "csrf_token": engineer_csrf})
    assert_form_error(revoked, 401, "no longer valid", "Log in again")
    assert f'{COOKIE}=""' in revoked.headers["set-cookie"]
    assert portal.get(f"/api/v1/problems/{problem_id}/comments") == []


def test_without_htmx_a_refused_form_is_still_a_whole_page(portal, problem_page):
    response = portal.client.post(f"/problems/{problem_page}/status", data={"status": "resolved"},
                                  follow_redirects=False)
    assert response.status_code == 403 and "hx-retarget" not in response.headers
    assert "security token" in error_message(response)
    portal.client.cookies.clear()
    expired = portal.client.post(f"/problems/{problem_page}/comments", data={"body": "x"}, follow_redirects=False)
    assert expired.status_code == 303 and expired.headers["location"].startswith("/login?next=")
