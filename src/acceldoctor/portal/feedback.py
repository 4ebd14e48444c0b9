"""Feedback from developers, linked to problems by the fingerprints its attachment holds: an attached report's events,
or the known errors (and unknown error-looking lines) the explain scanner finds in an attached log excerpt."""

from __future__ import annotations

import functools

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from acceldoctor.portal.api.schemas import FeedbackDetailOut, FeedbackIn, FeedbackOut, Page
from acceldoctor.portal.db.models import Feedback, FeedbackFingerprint
from acceldoctor.portal.grouping import EventDraft, events_of, normalize_message
from acceldoctor.portal.ingest import canonical_json
from acceldoctor.portal.problems import problems_with_fingerprints

MAX_LOG_LINES = 100_000


@functools.cache
def _matcher():
    from acceldoctor.explain.knowledge import load_knowledge_base
    from acceldoctor.explain.matcher import Matcher

    return Matcher(load_knowledge_base())


def log_events(excerpt: str) -> list[EventDraft]:
    """The events `acceldoctor explain` would make of these lines, as explain_events makes them of its JSON."""
    from acceldoctor.explain.unrecognized import looks_like_error
    from acceldoctor.explain.unrecognized import normalize as explain_template

    drafts: dict[str, EventDraft] = {}
    for line in excerpt.splitlines()[-MAX_LOG_LINES:]:
        entry = _matcher().classify(line)
        if entry is not None:
            draft = EventDraft("finding", entry.id, "", normalize_message(entry.title), line.strip()[:500])
        elif looks_like_error(line):
            draft = EventDraft("unrecognized", "unrecognized", "", normalize_message(explain_template(line)),
                               line.strip()[:500])
        else:
            continue
        drafts.setdefault(draft.fingerprint, draft)
    return list(drafts.values())


def file_feedback(session: Session, body: FeedbackIn, author: str) -> FeedbackOut:
    if body.report is not None:
        kind, attachment, drafts = "report", canonical_json(body.report), events_of(body.report)
    elif body.log_excerpt is not None:
        kind, attachment, drafts = "log", body.log_excerpt, log_events(body.log_excerpt)
    else:
        kind, attachment, drafts = None, None, []
    feedback = Feedback(title=body.title, description=body.description, severity=body.severity, host=body.host,
                        attachment_kind=kind, attachment=attachment, author=author)
    labels = {d.fingerprint: f"{d.key}: {d.title}"[:300] for d in drafts}
    feedback.fingerprints = [FeedbackFingerprint(fingerprint=f, label=label) for f, label in sorted(labels.items())]
    session.add(feedback)
    session.flush()
    return feedback_out(session, feedback)


def feedback_out(session: Session, feedback: Feedback, *, detail: bool = False) -> FeedbackOut:
    prints = [f.fingerprint for f in feedback.fingerprints]
    fields = dict(id=feedback.id, title=feedback.title, description=feedback.description, severity=feedback.severity,
                  host=feedback.host, author=feedback.author, attachment_kind=feedback.attachment_kind,
                  created_at=feedback.created_at, problems=problems_with_fingerprints(session, prints),
                  fingerprints=len(prints))
    return FeedbackDetailOut(**fields, attachment=feedback.attachment) if detail else FeedbackOut(**fields)


def list_feedback(session: Session, *, limit: int, offset: int) -> Page[FeedbackOut]:
    total = session.scalar(select(func.count()).select_from(Feedback)) or 0
    rows = session.scalars(select(Feedback).order_by(Feedback.id.desc()).limit(limit).offset(offset)).all()
    return Page(total=total, limit=limit, offset=offset, items=[feedback_out(session, f) for f in rows])


def get_feedback(session: Session, feedback_id: int) -> FeedbackDetailOut | None:
    feedback = session.get(Feedback, feedback_id)
    return None if feedback is None else feedback_out(session, feedback, detail=True)
