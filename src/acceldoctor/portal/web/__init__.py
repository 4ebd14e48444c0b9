"""The portal's server-rendered pages (Jinja2, inline SVG charts, vendored htmx): install_pages(app).

Routes: / (fleet), /nodes/{hostname}, /fleet/metric, /problems, /problems/{id}, /feedback, /feedback/new,
/feedback/{id}, /reports/{run_id}, /login, /logout, /static/{name}. The API under /api/v1 is untouched: it keeps
answering 401 where a page redirects to /login, and JSON errors where a page shows an error page (errors.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from acceldoctor.portal.web import routes_fleet, routes_login, routes_problems
from acceldoctor.portal.web.errors import install_page_errors


def install_pages(app: FastAPI) -> None:
    """The page routes and their error handling; after the API's error handlers, which the pages' wrap."""
    for module in (routes_fleet, routes_problems, routes_login):
        app.include_router(module.router)
    install_page_errors(app)
