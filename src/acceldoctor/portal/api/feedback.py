"""/api/v1/feedback: developers' reports of trouble, linked to the problems their attachment matches."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from acceldoctor.portal.api.deps import Limit, Offset, Reader, ReadSession, RowId, Uploader, WriteSession
from acceldoctor.portal.api.errors import STATUS_ERRORS
from acceldoctor.portal.api.schemas import FeedbackDetailOut, FeedbackIn, FeedbackOut, Page
from acceldoctor.portal.feedback import file_feedback, get_feedback, list_feedback

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"], responses=STATUS_ERRORS)


@router.post("", response_model=FeedbackOut, status_code=201)
def new_feedback(body: FeedbackIn, caller: Uploader, session: WriteSession) -> FeedbackOut:
    """File feedback; an attached report or log excerpt links it to the problems with the same fingerprints."""
    if body.report is not None and body.log_excerpt is not None:
        raise HTTPException(422, "attach a report or a log excerpt, not both")
    filed = file_feedback(session, body, caller.label)
    session.commit()
    return filed


@router.get("", response_model=Page[FeedbackOut])
def feedback_list(_caller: Reader, session: ReadSession, limit: Limit = 50, offset: Offset = 0
                  ) -> Page[FeedbackOut]:
    """Feedback, newest first."""
    return list_feedback(session, limit=limit, offset=offset)


@router.get("/{feedback_id}", response_model=FeedbackDetailOut)
def feedback(feedback_id: RowId, _caller: Reader, session: ReadSession) -> FeedbackDetailOut:
    found = get_feedback(session, feedback_id)
    if found is None:
        raise HTTPException(404, f"no feedback {feedback_id}")
    return found
