"""Reads and changes of problems: the list, one problem with where it was seen, status changes and comments."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from acceldoctor.portal.api.schemas import (
    CommentOut,
    EventOut,
    FeedbackBrief,
    Page,
    ProblemDetailOut,
    ProblemOut,
    SightingOut,
)
from acceldoctor.portal.db.models import (
    Comment,
    Event,
    Feedback,
    FeedbackFingerprint,
    Node,
    Problem,
    Sighting,
    StoredReport,
    utcnow,
)

RECENT_EVENTS = 20


def _problem_rows():
    nodes = select(func.count(func.distinct(Sighting.node_id))).where(Sighting.problem_id == Problem.id)
    # A device is a (node, device) pair; an event without a device (an explain finding) counts none.
    devices = (select(func.count()).select_from(
        select(Sighting.node_id, Sighting.device).where(Sighting.problem_id == Problem.id, Sighting.device != "")
        .distinct().subquery()))
    feedback = select(func.count()).where(FeedbackFingerprint.fingerprint == Problem.fingerprint)
    return select(Problem, nodes.scalar_subquery().label("node_count"),
                  devices.scalar_subquery().label("device_count"),
                  feedback.scalar_subquery().label("feedback_count"))


def problem_out(problem: Problem, node_count: int, device_count: int, feedback_count: int) -> ProblemOut:
    return ProblemOut(id=problem.id, fingerprint=problem.fingerprint, kind=problem.kind, key=problem.key,
                      device_model=problem.device_model, title=problem.title, example=problem.example,
                      status=problem.status, count=problem.event_count, first_seen=problem.first_seen,
                      last_seen=problem.last_seen, resolved_at=problem.resolved_at, node_count=node_count or 0,
                      device_count=device_count or 0, feedback_count=feedback_count or 0)


@dataclass(frozen=True)
class ProblemFilter:
    """Which problems a list shows: `statuses` is one status or several (the pages' "unresolved"); None is any."""

    statuses: tuple[str, ...] | None = None
    kind: str | None = None
    host: str | None = None
    device_model: str | None = None


def list_problems(session: Session, wanted: ProblemFilter, *, limit: int, offset: int) -> Page[ProblemOut]:
    """Problems, the latest seen first: the API's list and the problems page."""
    query = _problem_rows()
    if wanted.statuses is not None:
        query = query.where(Problem.status.in_(wanted.statuses))
    if wanted.kind is not None:
        query = query.where(Problem.kind == wanted.kind)
    if wanted.device_model is not None:
        query = query.where(Problem.device_model == wanted.device_model)
    if wanted.host is not None:
        query = query.where(Problem.id.in_(select(Sighting.problem_id).join(Node, Node.id == Sighting.node_id)
                                           .where(Node.hostname == wanted.host)))
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(Problem.id).subquery())) or 0
    rows = session.execute(query.order_by(Problem.last_seen.desc(), Problem.id.desc()).limit(limit).offset(offset))
    return Page(total=total, limit=limit, offset=offset, items=[problem_out(*row) for row in rows])


def problem_device_models(session: Session) -> list[str]:
    """The device models problems were seen on, for a filter's choices (a problem without a device has none)."""
    return sorted(m for m in session.scalars(select(Problem.device_model).distinct()) if m)


def problems_with_fingerprints(session: Session, fingerprints: list[str]) -> list[ProblemOut]:
    if not fingerprints:
        return []
    rows = session.execute(_problem_rows().where(Problem.fingerprint.in_(fingerprints)).order_by(Problem.id))
    return [problem_out(*row) for row in rows]


def get_problem(session: Session, problem_id: int) -> ProblemDetailOut | None:
    row = session.execute(_problem_rows().where(Problem.id == problem_id)).first()
    if row is None:
        return None
    problem = row[0]
    sightings = session.execute(
        select(Sighting, Node.hostname).join(Node, Node.id == Sighting.node_id)
        .where(Sighting.problem_id == problem_id).order_by(Node.hostname, Sighting.device, Sighting.software)).all()
    comments = session.scalars(select(Comment).where(Comment.problem_id == problem_id).order_by(Comment.id)).all()
    feedback = session.scalars(
        select(Feedback).join(FeedbackFingerprint, FeedbackFingerprint.feedback_id == Feedback.id)
        .where(FeedbackFingerprint.fingerprint == problem.fingerprint).order_by(Feedback.id)).all()
    events = session.execute(
        select(Event, StoredReport.run_id, Node.hostname).join(StoredReport, StoredReport.id == Event.report_id)
        .join(Node, Node.id == Event.node_id).where(Event.problem_id == problem_id)
        .order_by(Event.occurred_at.desc(), Event.id.desc()).limit(RECENT_EVENTS)).all()
    return ProblemDetailOut(
        **problem_out(*row).model_dump(),
        sightings=[SightingOut(host=h, device=s.device, software=s.software, count=s.count, first_seen=s.first_seen,
                               last_seen=s.last_seen) for s, h in sightings],
        software=sorted({s.software for s, _ in sightings if s.software}),
        comments=[comment_out(c) for c in comments],
        feedback=[FeedbackBrief(id=f.id, title=f.title, severity=f.severity, created_at=f.created_at)
                  for f in feedback],
        recent_events=[EventOut(run_id=run_id, host=h, device=e.device, message=e.message, occurred_at=e.occurred_at)
                       for e, run_id, h in events])


def set_status(session: Session, problem_id: int, status: str) -> bool:
    problem = session.get(Problem, problem_id, with_for_update=True)
    if problem is None:
        return False
    if problem.status != status:
        problem.status = status
        problem.status_changed_at = utcnow()
        if status == "resolved":
            problem.resolved_at = utcnow()
    return True


def comment_out(comment: Comment) -> CommentOut:
    return CommentOut(id=comment.id, author=comment.author, body=comment.body, created_at=comment.created_at)


def add_comment(session: Session, problem_id: int, author: str, body: str) -> CommentOut | None:
    if session.get(Problem, problem_id) is None:
        return None
    comment = Comment(problem_id=problem_id, author=author, body=body)
    session.add(comment)
    session.flush()
    return comment_out(comment)


def list_comments(session: Session, problem_id: int) -> list[CommentOut] | None:
    if session.get(Problem, problem_id) is None:
        return None
    return [comment_out(c) for c in
            session.scalars(select(Comment).where(Comment.problem_id == problem_id).order_by(Comment.id))]
