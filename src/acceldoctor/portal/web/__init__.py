"""The portal's server-rendered pages (Jinja2, inline SVG charts, vendored htmx): install_pages(app).

Routes: / (fleet), /nodes/{hostname}, /fleet/metric, /problems, /problems/{id}, /feedback, /feedback/new,
/feedback/{id}, /reports/{run_id}, /login, /logout, /static/{name}. The API under /api/v1 is untouched: it keeps
answering 401 where a page redirects to /login.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from acceldoctor.portal.web import routes_fleet, routes_login, routes_problems
from acceldoctor.portal.web.render import render
from acceldoctor.portal.web.session import LoginRequired, PageError, login_url


def install_pages(app: FastAPI) -> None:
    for module in (routes_fleet, routes_problems, routes_login):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> RedirectResponse:
        response = RedirectResponse(login_url(exc.next_path), status_code=303)
        if exc.reason:  # a saved token that no longer works: forget it
            response.delete_cookie(routes_login.COOKIE, path="/")
        return response

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> HTMLResponse:
        return render(request, None, "error.html.j2", status_code=exc.status, message=exc.message)
