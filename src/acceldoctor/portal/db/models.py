"""The portal's tables. The Alembic migrations in migrations/versions create exactly these (a test compares them).

Times are stored as naive UTC (SQLite has no time zone type) and come back aware (UTC).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class _NulSafe(TypeDecorator):
    """Text that PostgreSQL can hold: it refuses NUL characters, which a JSON string may carry (`\\u0000`); they are
    stored as U+FFFD on both backends, so both answer alike."""

    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        if not isinstance(value, str):
            return value
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        length = getattr(self.impl_instance, "length", None)
        # PostgreSQL refuses a string longer than its column; SQLite would keep it: both keep the same prefix.
        return value[:length] if length and len(value) > length else value


class SafeString(_NulSafe):
    impl = String
    cache_ok = True


class SafeText(_NulSafe):
    impl = Text
    cache_ok = True


class UTCDateTime(TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


class ApiToken(Base):
    """A bearer token: `adp_<public id>_<secret>`; only the sha256 of the whole token is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(SafeString(32), unique=True)
    token_sha256: Mapped[str] = mapped_column(SafeString(64))
    role: Mapped[str] = mapped_column(SafeString(16))
    name: Mapped[str] = mapped_column(SafeString(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Node(Base):
    """A machine that uploaded something, by hostname, with its latest check or stress report."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    hostname: Mapped[str] = mapped_column(SafeString(255), unique=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime] = mapped_column(index=True)
    os: Mapped[str | None] = mapped_column(SafeString(255))
    python: Mapped[str | None] = mapped_column(SafeString(64))
    torch: Mapped[str | None] = mapped_column(SafeString(64))
    stack: Mapped[dict | None] = mapped_column(JSON)
    # The fleet page shows each node's latest health report without scanning the reports table.
    latest_report_id: Mapped[int | None] = mapped_column(
        ForeignKey("reports.id", ondelete="SET NULL", use_alter=True, name="fk_nodes_latest_report"))

    devices: Mapped[list[Device]] = relationship(back_populates="node", order_by="Device.device")


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("node_id", "device", name="uq_devices_node_device"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    device: Mapped[str] = mapped_column(SafeString(64))  # torch's device string: cuda:0
    model: Mapped[str] = mapped_column(SafeString(255), index=True)  # the device's name: NVIDIA H100 80GB HBM3
    vendor: Mapped[str] = mapped_column(SafeString(64))
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    driver_version: Mapped[str | None] = mapped_column(SafeString(128))
    runtime_version: Mapped[str | None] = mapped_column(SafeString(128))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]

    node: Mapped[Node] = relationship(back_populates="devices")


class StoredReport(Base):
    """One uploaded document: a check or stress report, an explain result or a comparison, kept verbatim."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_node_started", "node_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(SafeString(200), unique=True)
    kind: Mapped[str] = mapped_column(SafeString(16), index=True)  # check, stress, explain, compare
    schema: Mapped[str] = mapped_column(SafeString(64))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(index=True)
    exit_code: Mapped[int | None]
    summary: Mapped[dict | None] = mapped_column(JSON)
    result_count: Mapped[int] = mapped_column(default=0)
    event_count: Mapped[int] = mapped_column(default=0)
    content_sha256: Mapped[str] = mapped_column(SafeString(64))
    document: Mapped[str] = mapped_column(SafeText)  # the canonical JSON of the upload

    node: Mapped[Node] = relationship(foreign_keys=[node_id])


class ExpiredReport(Base):
    """A report retention deleted, remembered by run_id so that uploading it again stores nothing: problems keep
    their counts past retention, so storing it again would count its events twice. A few hundred bytes a report."""

    __tablename__ = "expired_reports"

    run_id: Mapped[str] = mapped_column(SafeString(200), primary_key=True)
    content_sha256: Mapped[str] = mapped_column(SafeString(64))  # a retry is the same document: another is a 409
    received_at: Mapped[datetime]
    deleted_at: Mapped[datetime]


class ResultRow(Base):
    __tablename__ = "results"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    check: Mapped[str] = mapped_column(SafeString(128), index=True)
    device: Mapped[str] = mapped_column(SafeString(64))
    device_model: Mapped[str] = mapped_column(SafeString(255))
    status: Mapped[str] = mapped_column(SafeString(16))
    message: Mapped[str] = mapped_column(SafeText)
    duration_s: Mapped[float]
    rank: Mapped[int | None]


class ResultMetric(Base):
    """Every metric of every result, one row each, so trends (per node over time) and distributions (per device
    model) are SQL queries. Node, check and device model are copied here to query without joins."""

    __tablename__ = "result_metrics"
    __table_args__ = (
        Index("ix_metrics_node_trend", "node_id", "check", "name", "measured_at"),
        Index("ix_metrics_model_distribution", "device_model", "check", "name", "dtype"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    check: Mapped[str] = mapped_column(SafeString(128))
    device: Mapped[str] = mapped_column(SafeString(64))
    device_model: Mapped[str] = mapped_column(SafeString(255))
    name: Mapped[str] = mapped_column(SafeString(128))
    dtype: Mapped[str | None] = mapped_column(SafeString(32))
    unit: Mapped[str] = mapped_column(SafeString(32))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float)
    measured_at: Mapped[datetime]


class Problem(Base):
    """Events with one fingerprint. Counts and first/last seen live here so that deleting old events (retention)
    leaves them right."""

    __tablename__ = "problems"
    __table_args__ = (Index("ix_problems_status_last_seen", "status", "last_seen"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(SafeString(64), unique=True)
    kind: Mapped[str] = mapped_column(SafeString(16))  # result, finding, unrecognized, divergence
    key: Mapped[str] = mapped_column(SafeString(255))  # check id, error entry id, template or compare key
    device_model: Mapped[str] = mapped_column(SafeString(255))
    title: Mapped[str] = mapped_column(SafeText)  # the normalized message
    example: Mapped[str] = mapped_column(SafeText)  # one message as it was
    status: Mapped[str] = mapped_column(SafeString(16), default="open")  # open, acknowledged, resolved, regressed
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    status_changed_at: Mapped[datetime]


class Event(Base):
    """One occurrence: a failing result, an explain finding or unknown-error group, or a divergent comparison."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_problem_time", "problem_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"))
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    device: Mapped[str | None] = mapped_column(SafeString(64))
    message: Mapped[str] = mapped_column(SafeText)
    occurred_at: Mapped[datetime]


class Sighting(Base):
    """Where a problem was seen, aggregated per node, device and software versions (kept past retention): the
    problem page's affected nodes, devices and versions."""

    __tablename__ = "problem_sightings"
    __table_args__ = (UniqueConstraint("problem_id", "node_id", "device", "software", name="uq_sightings"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    device: Mapped[str] = mapped_column(SafeString(64))  # "" when the event has none (an explain finding)
    software: Mapped[str] = mapped_column(SafeString(1000))  # "torch 2.5.1, cuda 12.4, driver 550.54"
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class Comment(Base):
    __tablename__ = "problem_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(SafeString(200))
    body: Mapped[str] = mapped_column(SafeText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(SafeString(200))
    description: Mapped[str] = mapped_column(SafeText, default="")
    severity: Mapped[str] = mapped_column(SafeString(16))
    host: Mapped[str | None] = mapped_column(SafeString(255))
    attachment_kind: Mapped[str | None] = mapped_column(SafeString(16))  # report or log
    attachment: Mapped[str | None] = mapped_column(SafeText)
    author: Mapped[str] = mapped_column(SafeString(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    fingerprints: Mapped[list[FeedbackFingerprint]] = relationship(cascade="all, delete-orphan")


class FeedbackFingerprint(Base):
    """Feedback is linked to problems by fingerprint, not by problem id: a problem first seen after the feedback was
    filed is linked too."""

    __tablename__ = "feedback_fingerprints"

    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(SafeString(64), primary_key=True, index=True)
    label: Mapped[str] = mapped_column(SafeString(300))
