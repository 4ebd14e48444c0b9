"""create_app(settings): the FastAPI application of `acceldoctor serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

from fastapi import FastAPI, HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from acceldoctor import __version__
from acceldoctor.portal.api import feedback, fleet, ops, problems, reports, tokens
from acceldoctor.portal.api.deps import PortalState
from acceldoctor.portal.api.errors import install_error_handlers
from acceldoctor.portal.api.responses import HtmlSafeJSONResponse, json_bytes
from acceldoctor.portal.db.engine import Database
from acceldoctor.portal.logs import log_request
from acceldoctor.portal.metrics import ProcessCounters
from acceldoctor.portal.retention import delete_expired
from acceldoctor.portal.settings import PortalSettings
from acceldoctor.portal.web import install_pages

log = logging.getLogger("acceldoctor.portal")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimit:
    """Refuse a body over `limit` bytes with 413: by its Content-Length before reading it, or while it streams."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"the body is over the {self.limit} byte limit (--max-body-mb)"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return await _send_json(send, 413, too_large)
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, too_large)
            return message

        await self.app(scope, limited, send)


# What a portal token looks like in its header (auth.py: adp_<public id>_<secret>), checked before a body is read.
_BEARER_TOKEN = re.compile(rb"Bearer adp_[A-Za-z0-9-]+_[A-Za-z0-9_-]+")


class TokenBeforeBody:
    """A write without an Authorization header holding something shaped like a portal token is refused before its
    body is read: FastAPI reads and parses a body before it runs the dependencies that check the token, and a
    stranger should not make the server parse 16 MiB. (The token itself is checked by the routes' dependencies.)"""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS and scope["path"].startswith("/api/"):
            given = [value for name, value in scope.get("headers", []) if name == b"authorization"]
            if not given or not _BEARER_TOKEN.fullmatch(given[0].strip()) or len(given[0]) > 220:
                return await _send_json(send, 401, "a valid token is needed: send the header `Authorization: "
                                        "Bearer TOKEN`", [(b"www-authenticate", b"Bearer")])
        await self.app(scope, receive, send)


async def _send_json(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    body = json_bytes({"detail": detail})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestLog:
    """One JSON log line per request, and the per-status-class counter of /metrics."""

    def __init__(self, app: ASGIApp, counters: ProcessCounters):
        self.app, self.counters = app, counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.counters.request(status)
            client = scope.get("client")
            log_request(scope["method"], scope["path"], status, started, client[0] if client else None)


async def _retention_loop(state: PortalState) -> None:
    days = state.settings.retention_days
    while True:
        try:
            await run_in_threadpool(delete_expired, state.database, days)
        except Exception as exc:  # a busy or unreachable database: try again next time, keep serving
            log.warning("retention failed", extra={"fields": {"error": str(exc).splitlines()[0]}})
        await asyncio.sleep(state.settings.retention_interval_s)


def create_app(settings: PortalSettings, database: Database | None = None) -> FastAPI:
    """The application. The database must be migrated already (`acceldoctor serve` does it before serving)."""
    state = PortalState(settings, database or Database(settings.database_url), ProcessCounters())

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        task = asyncio.create_task(_retention_loop(state)) if settings.retention_days is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="acceldoctor portal", version=__version__, lifespan=lifespan,
                  default_response_class=HtmlSafeJSONResponse,
                  # FastAPI's /docs and /redoc load their scripts from a CDN; clusters are offline and DESIGN forbids
                  # it. The description is /openapi.json.
                  docs_url=None, redoc_url=None,
                  description="Reports from a fleet of accelerator nodes, grouped into problems; feedback from "
                  "developers. Every route but /healthz needs `Authorization: Bearer TOKEN` (reads are open when "
                  "the server runs with --public-read).")
    app.state.portal = state
    for module in (reports, problems, feedback, fleet, tokens, ops):
        app.include_router(module.router)
    install_error_handlers(app)
    install_pages(app)  # the server-rendered pages (acceldoctor/portal/web), after the API's error handlers
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(TokenBeforeBody)
    app.add_middleware(RequestLog, counters=state.counters)
    return app
