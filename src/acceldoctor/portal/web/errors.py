"""How the pages answer what they cannot do: an HTML error page for a person, where the API answers JSON.

The application has one set of exception handlers, so the API's (api/errors.py) are wrapped: a request for a page
(any path outside /api/, /openapi.json, /healthz and /metrics) gets the error page, everything else the API's JSON.
A form that htmx posted gets a short message in the form's own error slot instead of a whole page swapped into
<main> (the response headers retarget the swap), so the page and what was typed stay as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException

from acceldoctor.portal.web.render import render
from acceldoctor.portal.web.session import COOKIE, LoginRequired, PageError, Viewer, is_htmx, login_url, viewer

log = logging.getLogger("acceldoctor.portal")
API_PATHS = frozenset({"/api", "/openapi.json", "/healthz", "/metrics"})
# htmx: put the answer in place of the posting form's `.form-error` element (each hx-post form has one), taking
# that element from the answer rather than the form's hx-select="#main".
FORM_ERROR_SWAP = {"HX-Retarget": "find .form-error", "HX-Reswap": "outerHTML", "HX-Reselect": ".form-error"}
Handler = Callable[[Request, Exception], Awaitable[Response]]


def is_page_request(request: Request) -> bool:
    path = request.url.path
    return not (path in API_PATHS or path.startswith("/api/"))


def _viewer_if_any(request: Request) -> Viewer | None:
    """Who is looking, for the error page's header (their name, the log-out form); None when unknown."""
    try:
        return viewer(request)
    except (LoginRequired, SQLAlchemyError):
        return None


def error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None,
               login_next: str | None = None) -> HTMLResponse:
    """The error page, or for htmx the message alone (with a log-in link when the login is missing or expired)."""
    if is_htmx(request):
        response = render(request, None, "_form_error.html.j2", status_code=status, message=message,
                          login_next=login_next)
        response.headers.update(FORM_ERROR_SWAP)
    else:
        view = None if status == 503 else _viewer_if_any(request)  # the database is why it failed: do not ask it
        response = render(request, view, "error.html.j2", status_code=status, message=message)
    response.headers.update(headers or {})
    return response


def _plain_reason(error: dict) -> str:
    """What pydantic says about a value, as the end of "it should be ..."."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    if kind in ("int_parsing", "int_from_float"):
        return "a whole number"
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"{'at least' if kind == 'greater_than_equal' else 'at most'} {ctx.get('ge', ctx.get('le'))}"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters long"
    message = str(error.get("msg", "valid"))
    return message.removeprefix("Input should be ").removeprefix("String should be ").removeprefix("Value should be ")


def invalid_address_message(errors: list[dict]) -> tuple[int, str]:
    """(status, message) for a page address whose query or path parameter does not validate: 404 for a path (there
    is no such page), 400 for a query parameter; the message names the parameter and says what it should be."""
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ())]
    name = location[-1] if location else "address"
    if first.get("type") == "missing":
        return 400, f"The address needs a {name!r} parameter."
    given = first.get("input")
    shown = f"{len(given)} characters long" if isinstance(given, str) and len(given) > 60 else repr(given)
    reason = f"the {name!r} in the address should be {_plain_reason(first)} (it is {shown})"
    if location[:1] == ["path"]:
        return 404, f"There is no such page: {reason}."
    return 400, f"This page cannot be shown: {reason}."


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    status, message = invalid_address_message(list(exc.errors()))
    return error_page(request, status, message)


async def _http(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        message = f"There is no page at {request.url.path}."
    elif exc.status_code == 405:
        message = f"The page {request.url.path} does not take a {request.method} request."
    else:
        detail = str(exc.detail)
        message = detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
    return error_page(request, exc.status_code, message, headers=dict(exc.headers or {}))


async def _data(request: Request, exc: DataError) -> Response:
    return error_page(request, 400, "A value in the address cannot be looked up (the database refused it: "
                                    f"{str(exc.orig).splitlines()[0]}).")


async def _database(request: Request, exc: SQLAlchemyError) -> Response:
    log.error("database error", extra={"fields": {"path": request.url.path, "error": str(exc).splitlines()[0]}})
    return error_page(request, 503, "The database is busy or unavailable: try again in a moment.",
                      headers={"Retry-After": "1"})


async def _login_required(request: Request, exc: LoginRequired) -> Response:
    if is_htmx(request):
        message = exc.reason or "You are not logged in (the login expired, or you logged out in another tab)."
        response = error_page(request, 401, message, login_next=exc.next_path)
    else:
        response = RedirectResponse(login_url(exc.next_path), status_code=303)
    if exc.reason:  # a saved token that no longer works: forget it
        response.delete_cookie(COOKIE, path="/")
    return response


async def _page_error(request: Request, exc: PageError) -> Response:
    return error_page(request, exc.status, exc.message)


def _pages_or_api(api_handler: Handler, page_handler: Handler) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        if is_page_request(request):
            return await page_handler(request, exc)
        return await api_handler(request, exc)

    return handler


def install_page_errors(app: FastAPI) -> None:
    """After the API's handlers are installed: wraps them so that pages answer in HTML."""
    for exc_class, page_handler in ((RequestValidationError, _invalid), (HTTPException, _http), (DataError, _data),
                                    (SQLAlchemyError, _database)):
        api_handler = app.exception_handlers[exc_class]
        app.add_exception_handler(exc_class, _pages_or_api(api_handler, page_handler))
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageError, _page_error)
