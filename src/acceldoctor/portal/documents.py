"""What nodes upload to `POST /api/v1/reports`: a check or stress report, an explain result or a comparison,
told apart by their `schema` field. Unknown top-level fields are refused, so a typo or a newer tool's report is a
clear 422 instead of data silently dropped."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from acceldoctor.report.model import REPORT_SCHEMA, Report

EXPLAIN_SCHEMA = "acceldoctor.explain/1"  # acceldoctor.explain.report.EXPLAIN_SCHEMA, without importing re2 here
COMPARE_SCHEMA = "acceldoctor.compare/1"


class ReportUpload(Report):
    """A check or stress report (`acceldoctor check --json`, `acceldoctor stress --json`)."""

    schema_: Literal["acceldoctor.report/1"] = Field(alias="schema")
    run_id: str = Field(min_length=1, max_length=200)


class ExplainFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    category: str
    title: str
    severity: str
    file: str
    line: int
    rank: int | None = None
    time: str | None = None
    count: int = 1
    excerpt: str = ""
    explanation: str = ""
    actions: list[str] = Field(default_factory=list)


class ExplainRootCause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    finding: ExplainFinding | None = None
    rank: int | None = None
    reason: str = ""


class UnrecognizedGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str
    count: int
    examples: list[str] = Field(default_factory=list)
    file: str = ""
    line: int = 0


class ExplainUpload(BaseModel):
    """An explain result (`acceldoctor explain --json`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["acceldoctor.explain/1"] = Field(alias="schema")
    files: list[str] = Field(default_factory=list)
    unreadable: list[str] = Field(default_factory=list)
    partly_read: list[str] = Field(default_factory=list)
    bytes_scanned: int = 0
    findings: list[ExplainFinding] = Field(default_factory=list)
    root_cause: ExplainRootCause | None = None
    unrecognized: list[UnrecognizedGroup] = Field(default_factory=list)
    unrecognized_dropped: int = 0
    exit_code: int | None = None


class CompareUpload(BaseModel):
    """A comparison (`acceldoctor compare --json`). Below the top level its parts are free-form: the portal reads
    only the first divergence's key, verdict and the runs' devices and dtypes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["acceldoctor.compare/1"] = Field(alias="schema")
    equivalent: bool
    runs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    first_divergence: dict[str, Any] | None = None
    sources: list[str] = Field(default_factory=list)
    divergences: list[dict[str, Any]] = Field(default_factory=list)
    unmatched: dict[str, list[str]] = Field(default_factory=dict)
    compared_keys: int = 0
    first_nonfinite: dict[str, Any] | None = None
    losses: dict[str, Any] | None = None


UploadDocument = Annotated[ReportUpload | ExplainUpload | CompareUpload, Field(discriminator="schema_")]
ACCEPTED_SCHEMAS = (REPORT_SCHEMA, EXPLAIN_SCHEMA, COMPARE_SCHEMA)


def kind_of(document: ReportUpload | ExplainUpload | CompareUpload) -> str:
    if isinstance(document, ExplainUpload):
        return "explain"
    if isinstance(document, CompareUpload):
        return "compare"
    return "stress" if document.timeline is not None else "check"
