"""`--retention-days N`: reports received more than N days ago are deleted with their results, metrics and events.
Problems keep their counts and first/last seen, and sightings their aggregates: those live on the problem, not in
the events, so the problem list stays coherent after old events go."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from acceldoctor.portal.db.engine import Database
from acceldoctor.portal.db.models import Node, StoredReport, utcnow

log = logging.getLogger("acceldoctor.portal")
BATCH = 500


def delete_expired(database: Database, retention_days: int, now: datetime | None = None) -> int:
    """Delete expired reports in batches (each its own short transaction, so uploads are not held up); return how
    many were deleted."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    deleted = 0
    while True:
        with database.write_session() as session, session.begin():
            ids = session.scalars(select(StoredReport.id).where(StoredReport.received_at < cutoff)
                                  .order_by(StoredReport.id).limit(BATCH)).all()
            if not ids:
                break
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
