"""The API's request and response bodies: every route's input and output is one of these, so the OpenAPI
description is exact."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from acceldoctor.portal.documents import UploadDocument

T = TypeVar("T")
ProblemStatus = Literal["open", "acknowledged", "resolved", "regressed"]
Severity = Literal["low", "medium", "high", "critical"]
MAX_LOG_EXCERPT_CHARS = 2**20


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    total: int = Field(description="How many items match, over all pages.")
    limit: int
    offset: int
    items: list[T]


class Error(BaseModel):
    detail: str = Field(description="What was wrong, in one sentence.")
    errors: list[dict[str, Any]] | None = Field(None, description="Each validation error, where there were some.")


class ProblemTouchedOut(BaseModel):
    id: int
    fingerprint: str
    title: str
    status: ProblemStatus
    new: bool = Field(description="Whether this upload created the problem.")
    events: int = Field(description="Events this upload added to it.")


class UploadOut(BaseModel):
    run_id: str
    kind: Literal["check", "stress", "explain", "compare"]
    host: str
    stored: bool = Field(description="False when this run_id was received before: nothing was stored again.")
    expired_at: datetime | None = Field(
        None, description="When this run_id, received before, was deleted by retention (--retention-days): it is "
        "not stored again, as its events are still counted in their problems.")
    results: int
    metrics: int
    events: int
    problems: list[ProblemTouchedOut]


class ReportSummaryOut(BaseModel):
    run_id: str
    kind: str
    schema_: str = Field(alias="schema")
    host: str
    started_at: datetime
    finished_at: datetime | None
    received_at: datetime
    exit_code: int | None
    summary: dict[str, int] | None
    result_count: int
    event_count: int

    model_config = ConfigDict(populate_by_name=True)


class ReportOut(ReportSummaryOut):
    document: dict[str, Any] = Field(description="The uploaded document as stored.")


class DeviceOut(BaseModel):
    host: str
    device: str
    model: str
    vendor: str
    memory_bytes: int | None
    driver_version: str | None
    runtime_version: str | None
    first_seen: datetime
    last_seen: datetime


class NodeOut(BaseModel):
    hostname: str
    first_seen: datetime
    last_seen: datetime
    os: str | None
    python: str | None
    torch: str | None
    stack: dict[str, str] | None
    device_count: int
    report_count: int
    latest_report: ReportSummaryOut | None = Field(description="The check or stress report that started last.")


class NodeDetailOut(NodeOut):
    devices: list[DeviceOut]
    open_problems: int


class ProblemOut(BaseModel):
    id: int
    fingerprint: str
    kind: Literal["result", "finding", "unrecognized", "divergence"]
    key: str = Field(description="The check id, error entry id, `unrecognized`, or the compare call.")
    device_model: str
    title: str = Field(description="The normalized message shared by every event of the problem.")
    example: str = Field(description="One event's message as it was.")
    status: ProblemStatus
    count: int = Field(description="Events, ever (kept when old events are deleted by retention).")
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    node_count: int
    device_count: int
    feedback_count: int


class SightingOut(BaseModel):
    host: str
    device: str
    software: str
    count: int
    first_seen: datetime
    last_seen: datetime


class CommentIn(StrictInput):
    body: str = Field(min_length=1, max_length=20_000)


class CommentOut(BaseModel):
    id: int
    author: str
    body: str
    created_at: datetime


class EventOut(BaseModel):
    run_id: str
    host: str
    device: str | None
    message: str
    occurred_at: datetime


class FeedbackBrief(BaseModel):
    id: int
    title: str
    severity: Severity
    created_at: datetime


class ProblemDetailOut(ProblemOut):
    sightings: list[SightingOut]
    software: list[str] = Field(description="Every software version set the problem was seen with.")
    comments: list[CommentOut]
    feedback: list[FeedbackBrief]
    recent_events: list[EventOut]


class ProblemStatusIn(StrictInput):
    status: Literal["open", "acknowledged", "resolved"] = Field(
        description="`regressed` is set by the portal, when a resolved problem happens again.")


class FeedbackIn(StrictInput):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    severity: Severity = "medium"
    host: str | None = Field(None, max_length=255, description="The filer's hostname.")
    report: UploadDocument | None = Field(None, description="An attached report, explain result or comparison.")
    log_excerpt: str | None = Field(None, max_length=MAX_LOG_EXCERPT_CHARS,
                                    description="An attached log excerpt, scanned for known errors.")


class FeedbackOut(BaseModel):
    id: int
    title: str
    description: str
    severity: Severity
    host: str | None
    author: str
    attachment_kind: Literal["report", "log"] | None
    created_at: datetime
    problems: list[ProblemOut] = Field(description="Problems with a fingerprint the attachment has.")
    fingerprints: int = Field(description="Fingerprints found in the attachment.")


class FeedbackDetailOut(FeedbackOut):
    attachment: str | None


class TokenIn(StrictInput):
    role: Literal["uploader", "engineer", "admin"]
    name: str = Field("", max_length=200)


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="The token: shown this once, only its hash is kept.")


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: str
