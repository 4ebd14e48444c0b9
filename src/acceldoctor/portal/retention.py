"""`--retention-days N`: reports received more than N days ago are deleted with their results, metrics and events.
Problems keep their counts and first/last seen, and sightings their aggregates: those live on the problem, not in
the events, so the problem list stays coherent after old events go. Each deleted run_id is remembered
(expired_reports) so that uploading it again does not store and count it a second time.

Reports expire by the time the server received them, not the time the node says it ran them: that clock is the
server's own (a node's may be wrong), explain results and comparisons have no run time, and a report uploaded late
is kept as long as any other after it arrives."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from acceldoctor.portal.db.engine import Database
from acceldoctor.portal.db.models import ExpiredReport, Node, StoredReport, utcnow
from acceldoctor.portal.upsert import insert_for

log = logging.getLogger("acceldoctor.portal")
BATCH = 500


def delete_expired(database: Database, retention_days: int, now: datetime | None = None) -> int:
    """Delete expired reports in batches (each its own short transaction, so uploads are not held up); return how
    many were deleted."""
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    deleted = 0
    while True:
        with database.write_session() as session, session.begin():
            expiring = session.execute(
                select(StoredReport.id, StoredReport.run_id, StoredReport.content_sha256, StoredReport.received_at)
                .where(StoredReport.received_at < cutoff).order_by(StoredReport.id).limit(BATCH)).all()
            if not expiring:
                break
            ids = [row.id for row in expiring]
            session.execute(insert_for(session, ExpiredReport).on_conflict_do_nothing(index_elements=["run_id"]), [
                {"run_id": row.run_id, "content_sha256": row.content_sha256, "received_at": row.received_at,
                 "deleted_at": now} for row in expiring])
            orphaned = session.scalars(select(Node.id).where(Node.latest_report_id.in_(ids))).all()
            session.execute(update(Node).where(Node.id.in_(orphaned)).values(latest_report_id=None))
            session.execute(delete(StoredReport).where(StoredReport.id.in_(ids)))
            for node_id in orphaned:  # the newest health report left, if any, becomes the node's latest
                latest = session.scalar(
                    select(StoredReport.id).where(StoredReport.node_id == node_id,
                                                  StoredReport.kind.in_(("check", "stress")))
                    .order_by(StoredReport.started_at.desc(), StoredReport.id.desc()).limit(1))
                session.execute(update(Node).where(Node.id == node_id).values(latest_report_id=latest))
            deleted += len(ids)
    if deleted:
        log.info("retention", extra={"fields": {"deleted_reports": deleted, "cutoff": cutoff.isoformat()}})
    return deleted
