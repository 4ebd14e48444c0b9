"""/login (paste a token; it is kept in an HttpOnly cookie) and /logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from acceldoctor.portal.auth import verify_token
from acceldoctor.portal.web.render import render
from acceldoctor.portal.web.session import COOKIE, form_fields, safe_next

router = APIRouter(include_in_schema=False)
COOKIE_MAX_AGE = 30 * 86400  # a month; the token itself lives until revoked


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None):  # noqa: A002
    return render(request, None, "login.html.j2", next=safe_next(next), error=None,
                  public_read=request.app.state.portal.settings.public_read)


@router.post("/login")
async def login(request: Request):
    fields = await form_fields(request)
    token, next_path = fields.get("token", "").strip(), safe_next(fields.get("next"))
    def verify():  # in a worker thread: the event loop serves everyone else meanwhile
        with request.app.state.portal.database.read_session() as session:
            return verify_token(session, token) if token else None

    caller = await run_in_threadpool(verify)
    if caller is None:
        return render(request, None, "login.html.j2", status_code=401, next=next_path,
                      error="That token is not valid (unknown, mistyped or revoked).",
                      public_read=request.app.state.portal.settings.public_read)
    response = RedirectResponse(next_path, status_code=303)
    # HttpOnly: no script can read it. SameSite=Strict: no other site's page or form sends it. Secure over https
    # (behind a TLS proxy that sets X-Forwarded-Proto, run uvicorn with --proxy-headers for the scheme to show).
    response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout() -> RedirectResponse:
    # Logging out needs no CSRF token: another site making the browser log out does no harm worth a form.
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
