"""Rendering pages: one Jinja2 environment (autoescape always on) over the portal's templates and the offline
report's, and the headers every page carries."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

from acceldoctor import __version__
from acceldoctor.portal.web.session import CSRF_FIELD, Viewer

# No inline script, no inline style attribute, nothing from another origin (clusters are offline). The report's
# charts are inline <svg> elements, which need no source. form-action and frame-ancestors are not covered by
# default-src, so they are named.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def when(value: datetime | None) -> str:
    """A time as people read it on a dashboard: '2026-11-29 16:20 UTC'."""
    if value is None:
        return "—"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(timezone.utc) - value).total_seconds()
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


@functools.cache
def environment() -> Environment:
    # Portal templates first; then the report package's, for _report_body.html.j2 (the offline page's body).
    env = Environment(loader=ChoiceLoader([PackageLoader("acceldoctor.portal.web", "templates"),
                                           PackageLoader("acceldoctor.report", "templates")]),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    # q: a value inside a URL (path segment or query); unlike Jinja's urlencode it also escapes "/".
    env.filters.update(when=when, ago=ago, number=number, q=lambda value: quote(str(value), safe=""))
    env.globals.update(version=__version__, csrf_field=CSRF_FIELD)
    return env


def render(request: Request, view: Viewer | None, template: str, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    html = environment().get_template(template).render(request=request, view=view, path=request.url.path,
                                                         **context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


@functools.cache
def static_file(name: str) -> bytes | None:
    """A file of static/ (or the report's CSS), read once: they are package data and do not change."""
    if name == "report.css":
        return (resources.files("acceldoctor.report") / "templates" / "report.css").read_bytes()
    if name not in {"portal.css", "htmx.min.js"}:
        return None
    return (resources.files("acceldoctor.portal.web") / "static" / name).read_bytes()
