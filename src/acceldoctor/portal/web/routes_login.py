"""/login (paste a token; it is kept in an HttpOnly cookie) and /logout (a form, with the login's CSRF token).

Both are guarded against other sites: the login form by a pre-login nonce (session.py explains why), logging out
by the CSRF token every form that writes carries. GET /logout only asks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from acceldoctor.portal.auth import find_caller
from acceldoctor.portal.web.render import render
from acceldoctor.portal.web.session import (
    COOKIE,
    CSRF_FIELD,
    LOGIN_NONCE_COOKIE,
    LOGIN_NONCE_PATH,
    LoginRequired,
    PageError,
    csrf_matches,
    form_fields,
    login_is_forged,
    login_nonce,
    safe_next,
    viewer,
)

router = APIRouter(include_in_schema=False)
COOKIE_MAX_AGE = 30 * 86400  # a month; the token itself lives until revoked
FORGED_LOGIN = ("The login form had expired or was sent from another site, so nothing was done: paste the token "
                "again.")


def _login_page(request: Request, next_path: str, *, status_code: int = 200, error: str | None = None):
    nonce = login_nonce(request)
    response = render(request, None, "login.html.j2", status_code=status_code, next=next_path, error=error,
                      nonce=nonce, public_read=request.app.state.portal.settings.public_read)
    # No Max-Age: it lasts while the browser runs. HttpOnly and SameSite=Strict as the login cookie, for the same
    # reasons: no script reads it, and no other site's form gets it sent.
    response.set_cookie(LOGIN_NONCE_COOKIE, nonce, path=LOGIN_NONCE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None):  # noqa: A002
    return _login_page(request, safe_next(next))


@router.post("/login")
async def login(request: Request):
    fields = await form_fields(request)
    token, next_path = fields.get("token", "").strip(), safe_next(fields.get("next"))
    if login_is_forged(request, fields):  # before the token is even looked at
        return _login_page(request, next_path, status_code=403, error=FORGED_LOGIN)

    # in a worker thread: the event loop serves everyone else meanwhile
    caller = await run_in_threadpool(find_caller, request.app.state.portal.database, token) if token else None
    if caller is None:
        return _login_page(request, next_path, status_code=401,
                           error="That token is not valid (unknown, mistyped or revoked).")
    response = RedirectResponse(next_path, status_code=303)
    # HttpOnly: no script can read it. SameSite=Strict: no other site's page or form sends it. Secure over https
    # (behind a TLS proxy, `acceldoctor serve --forwarded-allow-ips` names the proxy whose X-Forwarded-Proto counts).
    response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_NONCE_COOKIE, path=LOGIN_NONCE_PATH)
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_page(request: Request):
    """Asks, with the form; a GET never logs out (a link or an image on another page could make one)."""
    try:
        view = viewer(request)
    except LoginRequired:
        return RedirectResponse("/login", status_code=303)
    if view.caller is None:  # reading without a login (--public-read): nothing to log out of
        return RedirectResponse("/", status_code=303)
    return render(request, view, "logout.html.j2")


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    fields = await form_fields(request)
    token = request.cookies.get(COOKIE)
    if not token:  # no login in this browser (or another site's post, which SameSite=Strict sends without it)
        return RedirectResponse("/login", status_code=303)
    if not csrf_matches(token, fields.get(CSRF_FIELD, "")):
        raise PageError(403, "The log-out form's security token is missing or out of date, so you are still logged "
                             "in: reload the page and try again.")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
