"""/api/v1/problems: the grouped failures, their status and comments."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from acceldoctor.portal.api.deps import Engineer, Limit, Offset, Reader, ReadSession, RowId, WriteSession
from acceldoctor.portal.api.errors import STATUS_ERRORS
from acceldoctor.portal.api.schemas import (
    CommentIn,
    CommentOut,
    Page,
    ProblemDetailOut,
    ProblemOut,
    ProblemStatus,
    ProblemStatusIn,
)
from acceldoctor.portal.problems import (
    ProblemFilter,
    add_comment,
    get_problem,
    list_comments,
    list_problems,
    set_status,
)

router = APIRouter(prefix="/api/v1/problems", tags=["problems"], responses=STATUS_ERRORS)


def _missing(problem_id: int) -> HTTPException:
    return HTTPException(404, f"no problem {problem_id}")


@router.get("", response_model=Page[ProblemOut])
def problems(_caller: Reader, session: ReadSession, limit: Limit = 50, offset: Offset = 0,
             status: ProblemStatus | None = None,
             kind: Literal["result", "finding", "unrecognized", "divergence"] | None = None,
             host: Annotated[str | None, Query(max_length=255, description="Only problems seen on this node.")] = None,
             device_model: Annotated[str | None, Query(max_length=255, description="Only problems of this device "
                                                       "model.")] = None,
             ) -> Page[ProblemOut]:
    """Problems, most recently seen first."""
    wanted = ProblemFilter(statuses=(status,) if status else None, kind=kind, host=host, device_model=device_model)
    return list_problems(session, wanted, limit=limit, offset=offset)


@router.get("/{problem_id}", response_model=ProblemDetailOut)
def problem(problem_id: RowId, _caller: Reader, session: ReadSession) -> ProblemDetailOut:
    found = get_problem(session, problem_id)
    if found is None:
        raise _missing(problem_id)
    return found


@router.patch("/{problem_id}", response_model=ProblemDetailOut)
def change_status(problem_id: RowId, change: ProblemStatusIn, _caller: Engineer, session: WriteSession
                  ) -> ProblemDetailOut:
    if not set_status(session, problem_id, change.status):
        raise _missing(problem_id)
    session.commit()
    return get_problem(session, problem_id)


@router.get("/{problem_id}/comments", response_model=list[CommentOut])
def comments(problem_id: RowId, _caller: Reader, session: ReadSession) -> list[CommentOut]:
    found = list_comments(session, problem_id)
    if found is None:
        raise _missing(problem_id)
    return found


@router.post("/{problem_id}/comments", response_model=CommentOut, status_code=201)
def comment(problem_id: RowId, body: CommentIn, caller: Engineer, session: WriteSession) -> CommentOut:
    added = add_comment(session, problem_id, caller.label, body.body)
    if added is None:
        raise _missing(problem_id)
    session.commit()
    return added
