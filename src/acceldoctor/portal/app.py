"""create_app(settings): the FastAPI application of `acceldoctor serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterator

from fastapi import FastAPI, HTTPException
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from acceldoctor import __version__
from acceldoctor.portal.api import feedback, fleet, ops, problems, reports, tokens
from acceldoctor.portal.api.deps import INVALID_TOKEN, NO_TOKEN, PortalState, required_role, role_refusal
from acceldoctor.portal.api.errors import install_error_handlers
from acceldoctor.portal.api.responses import HtmlSafeJSONResponse, json_bytes
from acceldoctor.portal.auth import Role, find_caller
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
# The scheme is case-insensitive (RFC 9110), as FastAPI's HTTPBearer, which the routes use, takes it.
_BEARER_TOKEN = re.compile(rb"(?i:bearer) +(adp_[A-Za-z0-9-]+_[A-Za-z0-9_-]+)")
_ASK_FOR_BEARER = [(b"www-authenticate", b"Bearer")]


def _api_routes(routes) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.12x keeps an included router whole
            yield from _api_routes(route.original_router.routes)


class TokenBeforeBody:
    """A write to the API is refused before its body is read unless its token is valid and its role may make that
    write: FastAPI reads and parses a body (up to --max-body-mb) before it runs the dependencies that check the token,
    and a stranger, or a token that may not write there, should not make the server read and parse 16 MiB. This is
    only an early no: the routes' dependencies still check every request and decide."""

    def __init__(self, app: ASGIApp, state: PortalState, routes: list):
        self.app, self.state = app, state
        self.write_roles = [(route, required_role(route)) for route in _api_routes(routes)
                            if route.methods & WRITE_METHODS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS and scope["path"].startswith("/api/"):
            refusal = await self._refusal(scope)
            if refusal is not None:
                return await _send_json(send, *refusal)
        await self.app(scope, receive, send)

    async def _refusal(self, scope: Scope) -> tuple[int, str, list] | None:
        given = [value.strip() for name, value in scope.get("headers", []) if name == b"authorization"]
        shaped = _BEARER_TOKEN.fullmatch(given[0]) if given and len(given[0]) <= 220 else None
        if shaped is None:
            return 401, NO_TOKEN, _ASK_FOR_BEARER
        try:  # in a thread: the event loop serves other requests while the database answers
            caller = await run_in_threadpool(find_caller, self.state.database, shaped.group(1).decode("ascii"))
        except SQLAlchemyError:
            return None  # the database is unavailable: the route answers 503 as it does for any request
        if caller is None:
            return 401, INVALID_TOKEN, _ASK_FOR_BEARER
        needed = self._role_for(scope["method"], scope["path"])
        if needed is not None and not caller.role.allows(needed):
            return 403, role_refusal(needed, caller), []
        return None

    def _role_for(self, method: str, path: str) -> Role | None:
        for route, role in self.write_roles:
            if method in route.methods and route.path_regex.match(path):
                return role
        return None  # no such route: the router answers 404 or 405 without reading the body


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
    app.add_middleware(TokenBeforeBody, state=state, routes=app.routes)
    app.add_middleware(RequestLog, counters=state.counters)
    return app
