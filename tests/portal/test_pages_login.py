"""Logging in and out of the pages, on SQLite and PostgreSQL: the login cookie's attributes, and that another site
can neither log a browser in with its own token (login CSRF) nor log it out with a link, an image or a form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from acceldoctor.portal.web.session import COOKIE, LOGIN_NONCE_COOKIE, csrf_token


def login_nonce(client) -> str:
    """Open the login page as a browser does: the nonce it puts in the form (and in its pre-login cookie)."""
    shown = client.get("/login?next=/problems")
    assert shown.status_code == 200
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', shown.text).group(1)
    assert client.cookies.get(LOGIN_NONCE_COOKIE) == nonce
    return nonce


def log_in(client, token: str) -> None:
    """Through the login form, so that the cookie is the one the server set (and can delete)."""
    answer = client.post("/login", data={"token": token, "csrf_token": login_nonce(client)}, follow_redirects=False)
    assert answer.status_code == 303


def logged_in_as(client) -> str | None:
    """Whose name the header shows, or None when the fleet page sends the browser to log in."""
    fleet = client.get("/", follow_redirects=False)
    if fleet.status_code == 303:
        return None
    return re.search(r'<span class="login">([^<]+)</span>', fleet.text).group(1)


def test_login_keeps_the_token_in_a_strict_httponly_cookie(portal):
    client = portal.client
    shown = client.get("/login")
    nonce_cookie = shown.headers["set-cookie"]
    assert nonce_cookie.startswith(f"{LOGIN_NONCE_COOKIE}=") and "HttpOnly" in nonce_cookie
    assert "SameSite=strict" in nonce_cookie and "Path=/login" in nonce_cookie
    nonce = login_nonce(client)
    refused = client.post("/login", data={"token": "adp_x_y", "next": "/problems", "csrf_token": nonce},
                          follow_redirects=False)
    assert refused.status_code == 401 and "not valid" in refused.text
    assert f"{COOKIE}=" not in refused.headers.get("set-cookie", "")
    done = client.post("/login", data={"token": portal.tokens["engineer"], "next": "/problems", "csrf_token": nonce},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/problems"
    cookies = done.headers.get_list("set-cookie")
    [login] = [c for c in cookies if c.startswith(f"{COOKIE}=")]
    assert "HttpOnly" in login and "SameSite=strict" in login
    assert "Secure" not in login  # plain http in the test; https sets it (test_serve_proxy.py)
    assert any(c.startswith(f'{LOGIN_NONCE_COOKIE}=""') for c in cookies)  # the nonce has served its purpose
    assert logged_in_as(client) == "engineer tester (engineer)"
    # a tab or newline: browsers drop it from a URL, so "/<TAB>/evil.example" would be followed as "//evil.example"
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example", "/\t/evil.example/x",
                 "/\n/evil.example", "/\x7f/x"):
        response = client.post("/login", data={"token": portal.tokens["engineer"], "next": evil,
                                               "csrf_token": login_nonce(client)}, follow_redirects=False)
        assert response.headers["location"] == "/"


def test_another_site_cannot_log_the_browser_in_with_its_own_token(portal):
    """Login CSRF: the attacker's page posts the attacker's token to /login from the victim's browser. It cannot
    read the victim's pre-login cookie, so the nonce it sends is missing or its own; and a browser says where the
    post came from (Sec-Fetch-Site), which a page cannot change."""
    client, attacker_token = portal.client, portal.tokens["uploader"]
    attackers_own_nonce = login_nonce(TestClient(portal.app))  # the attacker's own visit to the login page
    forged = [
        {},  # a plain cross-site form: no nonce at all (and SameSite=Strict keeps the victim's cookie back)
        {"csrf_token": attackers_own_nonce},
    ]
    login_nonce(client)  # the victim has opened the login page before: their own nonce is in their cookie
    for fields in forged:
        answer = client.post("/login", data={"token": attacker_token, "next": "/", **fields},
                             follow_redirects=False)
        assert answer.status_code == 403 and "sent from another site" in answer.text
        assert f"{COOKIE}=" not in answer.headers.get("set-cookie", "")
    # Even with the victim's own nonce (planted by a sibling subdomain, say), a post from another site is refused.
    nonce = client.cookies.get(LOGIN_NONCE_COOKIE)
    for site in ("cross-site", "same-site"):
        answer = client.post("/login", data={"token": attacker_token, "csrf_token": nonce},
                             headers={"Sec-Fetch-Site": site}, follow_redirects=False)
        assert answer.status_code == 403, site
    assert logged_in_as(client) is None
    # The portal's own login page, in a browser that says so, still logs in.
    answer = client.post("/login", data={"token": portal.tokens["engineer"], "csrf_token": nonce},
                         headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert answer.status_code == 303 and logged_in_as(client) == "engineer tester (engineer)"


def test_logging_out_is_a_form_with_the_csrf_token(portal):
    client = portal.client
    log_in(client, portal.tokens["engineer"])
    fleet = client.get("/").text
    # the header's log-out button is a form carrying the login's CSRF token
    assert re.search(r'<form method="post" action="/logout"[^>]*><input type="hidden" name="csrf_token" value="'
                     + csrf_token(portal.tokens["engineer"]) + '">', fleet)
    # a link or an image (GET) only asks; nothing is forgotten
    asked = client.get("/logout", follow_redirects=False)
    assert asked.status_code == 200 and 'action="/logout"' in asked.text and "set-cookie" not in asked.headers
    assert logged_in_as(client) == "engineer tester (engineer)"
    # another site's form has no CSRF token, or a wrong one: still logged in
    for fields in ({}, {"csrf_token": "0" * 64}, {"csrf_token": csrf_token(portal.tokens["admin"])}):
        refused = client.post("/logout", data=fields, follow_redirects=False)
        assert refused.status_code == 403 and "still logged in" in refused.text
        assert "set-cookie" not in refused.headers
    assert logged_in_as(client) == "engineer tester (engineer)"
    done = client.post("/logout", data={"csrf_token": csrf_token(portal.tokens["engineer"])}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert f'{COOKIE}=""' in done.headers["set-cookie"]
    assert logged_in_as(client) is None
    # without a login there is nothing to forget: off to the login page, no cookie touched
    for answer in (client.get("/logout", follow_redirects=False), client.post("/logout", follow_redirects=False)):
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
        assert "set-cookie" not in answer.headers
