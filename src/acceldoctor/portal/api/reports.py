"""/api/v1/reports: upload a report (or explain result, or comparison); list them; read one back."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query, Response

from acceldoctor.portal.api.deps import Limit, Offset, Reader, ReadSession, State, Uploader, WriteSession
from acceldoctor.portal.api.errors import STATUS_ERRORS, Error
from acceldoctor.portal.api.schemas import Page, ProblemTouchedOut, ReportOut, ReportSummaryOut, UploadOut
from acceldoctor.portal.documents import UploadDocument
from acceldoctor.portal.ingest import IngestError, RunIdTaken, ingest
from acceldoctor.portal.queries import get_report, list_reports

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=STATUS_ERRORS)
log = logging.getLogger("acceldoctor.portal")
Kind = Literal["check", "stress", "explain", "compare"]


@router.post("", status_code=201, response_model=UploadOut,
             responses={200: {"model": UploadOut, "description": "This run_id was received before (and is stored, "
                              "or retention deleted it: then `expired_at` says when): nothing stored."},
                        201: {"description": "Stored."},
                        409: {"model": Error, "description": "Another document was received under this run_id."}})
def upload_report(
    document: Annotated[UploadDocument, Body(description="A check or stress report, an explain result or a "
                                                         "comparison, as the CLI writes them with --json.")],
    caller: Uploader, session: WriteSession, state: State, response: Response,
    host: Annotated[str | None, Query(
        max_length=255, description="The uploading node's hostname: needed for explain results and comparisons "
        "(which do not name it); ignored for check and stress reports, which do.")] = None,
) -> UploadOut:
    try:
        outcome = ingest(session, document, host, max_clock_skew=timedelta(seconds=state.settings.max_clock_skew_s))
    except IngestError as exc:
        state.counters.upload("rejected")
        raise HTTPException(409 if isinstance(exc, RunIdTaken) else 422, str(exc)) from None
    session.commit()  # before answering: a 2xx means stored
    state.counters.upload("stored" if outcome.stored else "duplicate")
    if not outcome.stored:
        response.status_code = 200
    log.info("upload", extra={"fields": {"run_id": outcome.run_id, "kind": outcome.kind, "host": outcome.host,
                                         "stored": outcome.stored, "expired": outcome.expired_at is not None,
                                         "events": outcome.events, "token": caller.label}})
    return UploadOut(run_id=outcome.run_id, kind=outcome.kind, host=outcome.host, stored=outcome.stored,
                     expired_at=outcome.expired_at,
                     results=outcome.results, metrics=outcome.metrics, events=outcome.events,
                     problems=[ProblemTouchedOut(**vars(p)) for p in outcome.problems])


@router.get("", response_model=Page[ReportSummaryOut])
def reports(_caller: Reader, session: ReadSession, limit: Limit = 50, offset: Offset = 0,
            host: Annotated[str | None, Query(max_length=255)] = None, kind: Kind | None = None,
            ) -> Page[ReportSummaryOut]:
    """Reports, newest received first, with the total over all pages."""
    return list_reports(session, limit=limit, offset=offset, host=host, kind=kind)


@router.get("/{run_id}", response_model=ReportOut)
def report(run_id: Annotated[str, Path(max_length=200)], _caller: Reader, session: ReadSession) -> ReportOut:
    found = get_report(session, run_id)
    if found is None:
        raise HTTPException(404, f"no report with run_id {run_id!r}")
    return found
