"""/healthz (for load balancers: no token) and /metrics (Prometheus; a read token unless --public-read)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from acceldoctor.portal.api.deps import Reader, ReadSession, State
from acceldoctor.portal.api.errors import STATUS_ERRORS
from acceldoctor.portal.api.schemas import HealthOut
from acceldoctor.portal.metrics import exposition

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, responses={503: STATUS_ERRORS[503]})
def healthz(state: State):
    try:
        with state.database.read_session() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database makes the server unhealthy, never a 500
        return JSONResponse({"detail": f"the database does not answer: {type(exc).__name__}"}, status_code=503)
    return HealthOut(status="ok", database=state.database.dialect)


# The 401 is JSON like every error: described by hand, since a `model` would be filed under the route's text/plain.
UNAUTHORIZED_JSON = {401: {"description": "No token, or not a valid one.", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}


@router.get("/metrics", response_class=PlainTextResponse, responses=UNAUTHORIZED_JSON)
def metrics(_caller: Reader, session: ReadSession, state: State) -> PlainTextResponse:
    return PlainTextResponse(exposition(session, state.counters), media_type="text/plain; version=0.0.4")
