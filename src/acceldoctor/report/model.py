"""Report schema `acceldoctor.report/1` (see shared/DESIGN.md, "Report JSON")."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

REPORT_SCHEMA = "acceldoctor.report/1"


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"  # the check itself could not run
    TIMEOUT = "timeout"  # the check hung and was stopped
    CRASH = "crash"  # the process running the check died

    @property
    def is_problem(self) -> bool:
        return self in PROBLEM_STATUSES


PROBLEM_STATUSES = frozenset({Status.FAIL, Status.TIMEOUT, Status.CRASH})


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    value: float | None
    unit: str = ""
    dtype: str | None = None
    threshold: float | None = None
    baseline: float | None = None


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check: str = Field(description="Check id, `<category>.<name>`.")
    device: str = Field(description="torch device string, e.g. `cuda:0` or `cpu`.")
    status: Status
    message: str = Field(description="One plain sentence a person understands.")
    metrics: list[Metric] = Field(default_factory=list)
    duration_s: float = 0.0
    doc: str = Field(description="The id to pass to `acceldoctor doc`.")
    rank: int | None = Field(default=None, description="The rank in a multi-process (distributed) check.")
    host: str | None = Field(default=None, description="The host the rank ran on (distributed checks).")


class DeviceInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    vendor: str
    memory_bytes: int | None = None
    driver_version: str | None = None
    runtime_version: str | None = None


class HostInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    hostname: str
    os: str
    python: str
    torch: str | None = None
    stack: dict[str, str] = Field(
        default_factory=dict, description="Vendor stack versions: cuda, hip, cann, torch_npu, driver..."
    )


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str = Field(REPORT_SCHEMA, alias="schema")
    run_id: str
    started_at: str
    finished_at: str | None = Field(
        None, description="Null while the run is in progress (or when it was killed before the end)."
    )
    host: HostInfo
    devices: list[DeviceInfo] = Field(default_factory=list)
    results: list[Result] = Field(default_factory=list)
    summary: dict[str, int] = Field(default_factory=dict)
    exit_code: int | None = None
    timeline: dict[str, list[dict[str, Any]]] | None = Field(
        None, description="`acceldoctor stress`: per device, one sample per interval: `t_s` (seconds since the "
        "start), `tflops` (float32 GEMM throughput), `iterations`, `wrong_elements` and `nan_elements` (summed "
        "over the workloads), `workloads` (per workload: iterations, wrong_elements, nan_elements, rate, unit) and, "
        "where the device reports it, `telemetry` (temperature_c, power_w, clock_mhz, throttle, ecc_uncorrected, "
        "health...).")

    def refresh_summary(self) -> None:
        counts = {status.value: 0 for status in Status}
        for result in self.results:
            counts[result.status.value] += 1
        self.summary = counts

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def exit_code_for(results: list[Result]) -> int:
    """0 healthy, 1 a problem was found, 2 a check could not run at all (tool error)."""
    statuses = {r.status for r in results}
    if statuses & PROBLEM_STATUSES:
        return 1
    if Status.ERROR in statuses:
        return 2
    return 0
