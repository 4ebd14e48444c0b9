"""Pages about what went wrong and what people said: problems (with status changes and comments) and feedback.

Forms are plain HTML posts answered with a redirect (POST-redirect-GET), so they work without JavaScript; with it,
htmx posts them and swaps the page's <main> in place. Each write checks the login's role and its CSRF token.
"""

from __future__ import annotations

import json
from typing import Annotated, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select

from acceldoctor.portal.api.deps import ReadSession
from acceldoctor.portal.api.schemas import FeedbackIn, ProblemOut, ProblemStatus, Severity
from acceldoctor.portal.db.models import StoredReport
from acceldoctor.portal.feedback import file_feedback, get_feedback, list_feedback
from acceldoctor.portal.problems import (
    ProblemFilter,
    add_comment,
    get_problem,
    list_problems,
    problem_device_models,
    set_status,
)
from acceldoctor.portal.web import queries
from acceldoctor.portal.web.params import Offset, choice, text
from acceldoctor.portal.web.render import render
from acceldoctor.portal.web.session import PageError, Viewer, check_write, form_fields, viewer

router = APIRouter(include_in_schema=False)
Page = Annotated[Viewer, Depends(viewer)]
ProblemId = Annotated[int, Path(ge=1, le=2**62)]
PER_PAGE = 50
STATUSES = get_args(ProblemStatus)
SEVERITIES = get_args(Severity)
KINDS = get_args(ProblemOut.model_fields["kind"].annotation)  # result, finding, unrecognized, divergence
MAX_COMMENT = 20_000
StatusChoice = choice(("unresolved", *STATUSES))  # unresolved: open, acknowledged or regressed
KindChoice = choice(KINDS)
Text = text()


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/problems", response_class=HTMLResponse)
def problems_page(request: Request, view: Page, session: ReadSession, offset: Offset = 0, status: StatusChoice = None,
                  kind: KindChoice = None, model: Text = None, host: Text = None):
    statuses = queries.UNRESOLVED_STATUSES if status == "unresolved" else (status,) if status else None
    wanted = ProblemFilter(statuses=statuses, kind=kind, host=host, device_model=model)
    found = list_problems(session, wanted, limit=PER_PAGE, offset=offset)
    filters = {"status": status, "kind": kind, "model": model, "host": host}
    chosen = {name: value for name, value in filters.items() if value}
    return render(request, view, "problems.html.j2", problems=found, filters=filters, filtered=bool(chosen),
                  page_url="/problems" + (f"?{urlencode(chosen)}" if chosen else ""), statuses=STATUSES,
                  kinds=KINDS, models=problem_device_models(session), offset=offset, limit=PER_PAGE)


@router.get("/problems/{problem_id}", response_class=HTMLResponse)
def problem_page(request: Request, problem_id: ProblemId, view: Page, session: ReadSession):
    problem = get_problem(session, problem_id)
    if problem is None:
        raise PageError(404, f"No problem {problem_id}.")
    return render(request, view, "problem.html.j2", problem=problem, statuses=STATUSES[:3])


@router.post("/problems/{problem_id}/status")
async def change_status(request: Request, problem_id: ProblemId, view: Page):
    fields = await form_fields(request)
    back = f"/problems/{problem_id}"
    check_write(view, fields, request, "engineer", back)
    status = fields.get("status", "")
    if status not in STATUSES[:3]:  # "regressed" is the portal's own word, not a person's choice
        raise PageError(400, "Choose open, acknowledged or resolved.")
    def write() -> None:  # in a worker thread: a write may wait for others, and must not stop the server
        with request.app.state.portal.database.write_session() as session:
            if not set_status(session, problem_id, status):
                raise PageError(404, f"No problem {problem_id}.")
            session.commit()

    await run_in_threadpool(write)
    return _see_other(back)


@router.post("/problems/{problem_id}/comments")
async def comment(request: Request, problem_id: ProblemId, view: Page):
    fields = await form_fields(request)
    back = f"/problems/{problem_id}"
    caller = check_write(view, fields, request, "engineer", back)
    body = fields.get("body", "").strip()
    if not body or len(body) > MAX_COMMENT:
        raise PageError(400, f"A comment needs between 1 and {MAX_COMMENT} characters.")
    def write() -> None:  # in a worker thread, as above
        with request.app.state.portal.database.write_session() as session:
            if add_comment(session, problem_id, caller.label, body) is None:
                raise PageError(404, f"No problem {problem_id}.")
            session.commit()

    await run_in_threadpool(write)
    return _see_other(back + "#comments")


@router.get("/feedback", response_class=HTMLResponse)
def feedback_page(request: Request, view: Page, session: ReadSession, offset: Offset = 0,
                  filed: Annotated[int | None, Query(ge=1, le=2**62)] = None):
    return render(request, view, "feedback.html.j2", feedback=list_feedback(session, limit=PER_PAGE, offset=offset),
                  offset=offset, limit=PER_PAGE, filed=filed)


@router.get("/feedback/new", response_class=HTMLResponse)
def new_feedback_page(request: Request, view: Page, run_id: Annotated[str | None, Query(max_length=200)] = None):
    return render(request, view, "feedback_new.html.j2", fields={"report_run_id": run_id or ""}, error=None,
                  severities=SEVERITIES)


@router.get("/feedback/{feedback_id}", response_class=HTMLResponse)
def feedback_detail(request: Request, feedback_id: ProblemId, view: Page, session: ReadSession):
    found = get_feedback(session, feedback_id)
    if found is None:
        raise PageError(404, f"No feedback {feedback_id}.")
    return render(request, view, "feedback_detail.html.j2", item=found)


def _feedback_input(session, fields: dict[str, str]) -> FeedbackIn:
    """The form as the API's FeedbackIn; a report is attached by its run id (one already on the portal)."""
    body: dict = {"title": fields.get("title", "").strip(), "description": fields.get("description", ""),
                  "severity": fields.get("severity", "medium"), "host": fields.get("host", "").strip() or None}
    run_id, excerpt = fields.get("report_run_id", "").strip(), fields.get("log_excerpt", "")
    if run_id and excerpt.strip():
        raise ValueError("Attach a report or a log excerpt, not both.")
    if run_id:
        document = session.scalar(select(StoredReport.document).where(StoredReport.run_id == run_id))
        if document is None:
            raise ValueError(f"No report with run id {run_id!r} is on the portal.")
        body["report"] = json.loads(document)
    elif excerpt.strip():
        body["log_excerpt"] = excerpt
    return FeedbackIn.model_validate(body)


@router.post("/feedback/new")
async def file_feedback_form(request: Request, view: Page):
    fields = await form_fields(request)
    caller = check_write(view, fields, request, "uploader", "/feedback/new")

    def write() -> tuple[int | None, str | None]:  # in a worker thread: a write may wait for others
        with request.app.state.portal.database.write_session() as session:
            try:
                body = _feedback_input(session, fields)
            except ValidationError as exc:
                first = exc.errors()[0]
                return None, f"{'.'.join(str(p) for p in first.get('loc', ())) or 'form'}: " \
                             f"{first.get('msg', 'invalid')}"
            except ValueError as exc:
                return None, str(exc)
            filed = file_feedback(session, body, caller.label)
            session.commit()
            return filed.id, None

    filed_id, error = await run_in_threadpool(write)
    if filed_id is not None:
        return _see_other(f"/feedback/{filed_id}")
    return render(request, view, "feedback_new.html.j2", status_code=400, fields=fields, error=error,
                  severities=SEVERITIES)
