"""Every error the API answers is `{"detail": "one sentence", "errors": [...]?}`, with the right status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic_core import PydanticSerializationError
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException

from acceldoctor.portal.api.responses import HtmlSafeJSONResponse as JSONResponse
from acceldoctor.portal.api.schemas import Error

log = logging.getLogger("acceldoctor.portal")
STATUS_ERRORS = {s: {"model": Error} for s in (400, 401, 403, 404, 413, 422, 503)}


def _location(loc) -> str:
    return ".".join(str(part) for part in loc if part not in ("body",)) or "body"


def summary_of(errors: list[dict]) -> str:
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON: {first.get('ctx', {}).get('error', 'decode error')}"
    if first.get("type") == "union_tag_invalid":
        tag = first.get("ctx", {}).get("tag")
        return (f"unsupported schema {tag!r}: this portal accepts acceldoctor.report/1, acceldoctor.explain/1 and "
                "acceldoctor.compare/1")
    if first.get("type") == "union_tag_not_found":
        return "the body has no `schema` field: is it an acceldoctor report, explain result or comparison?"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{_location(first.get('loc', ()))}: {first.get('msg', 'invalid')}{more}"


def _json_safe_errors(errors: list[dict]) -> list[dict]:
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errors[:50]]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        return JSONResponse({"detail": summary_of(errors) if errors else "invalid request",
                             "errors": _json_safe_errors(errors)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if detail == "There was an error parsing the body":  # FastAPI's words for, e.g., a RecursionError
            detail = "the body cannot be parsed: not UTF-8 JSON, or nested too deeply to be a report"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(DataError)
    async def _data(_request: Request, exc: DataError) -> JSONResponse:
        return JSONResponse({"detail": f"a value cannot be stored: {str(exc.orig).splitlines()[0]}"}, status_code=422)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Nothing was acknowledged: the transaction did not commit. 503 tells the client to retry.
        log.error("database error", extra={"fields": {"path": request.url.path, "error": str(exc).splitlines()[0]}})
        return JSONResponse({"detail": "the database is unavailable or busy; nothing was stored, retry"},
                            status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(PydanticSerializationError)
    async def _unserializable(_request: Request, exc: PydanticSerializationError) -> JSONResponse:
        # pydantic validates free-form fields to any depth but serializes to 255 levels only
        return JSONResponse({"detail": "the document is nested too deeply (or holds a value JSON cannot hold) to "
                                       "be stored; nothing was stored"}, status_code=422)

    @app.exception_handler(RecursionError)
    async def _too_deep(_request: Request, _exc: RecursionError) -> JSONResponse:
        return JSONResponse({"detail": "the body is nested too deeply to be a report"}, status_code=400)
