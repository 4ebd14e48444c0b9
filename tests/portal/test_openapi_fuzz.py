"""Fuzzing the API from its own OpenAPI description (schemathesis): no input makes the portal answer 5xx, and every
answer matches the description (status code, content type, body schema).

Each operation gets MAX_EXAMPLES generated requests (valid ones, and invalid ones that must be refused with 4xx),
derandomized so a failure reproduces; the requests carry an admin token so that the routes behind authentication
run their code, not only the 401.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import failing, make_report  # noqa: E402

# ACCELDOCTOR_FUZZ_EXAMPLES=500 for a deeper (slower) hunt; the default keeps the test near 20 s a backend.
MAX_EXAMPLES = int(os.environ.get("ACCELDOCTOR_FUZZ_EXAMPLES", "25"))
MIN_OPERATIONS = 18  # the API has 20 (reports, problems, feedback, fleet, tokens, ops)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _seed(portal) -> None:
    """A node, a report, a problem and a feedback, so that lists and ids 1 find something."""
    assert portal.upload(make_report(host="node-1", results=[failing()])).status_code == 201
    response = portal.client.post("/api/v1/feedback", headers=portal.headers("uploader"),
                                  json={"title": "fuzz seed", "description": "seed", "severity": "low"})
    assert response.status_code == 201, response.text


def _fuzz(operation, headers: dict, token_ids: set[int], statuses: Counter) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE)))
    def run(case) -> None:
        if case.method == "DELETE" and case.path_parameters and case.path_parameters.get("token_id") in token_ids:
            return  # revoking the fuzzer's own tokens would turn every later request into a 401
        response = case.call(headers=headers)
        statuses[(operation.label, response.status_code // 100)] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_no_server_error_and_answers_match_the_description(portal):
    _seed(portal)
    schema = schemathesis.openapi.from_asgi("/openapi.json", portal.app).include(
        path_regex=r"^/(api/|healthz|metrics)")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= MIN_OPERATIONS, [op.label for op in operations]
    headers = portal.headers("admin")
    with portal.database.read_session() as session:
        from sqlalchemy import select

        from acceldoctor.portal.db.models import ApiToken

        token_ids = set(session.scalars(select(ApiToken.id)))
    failures, statuses = [], Counter()
    for operation in operations:
        try:
            _fuzz(operation, headers, token_ids, statuses)
        except Exception as exc:  # every operation is fuzzed; the failures are reported together
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # It ran: every operation was called many times, and most got past validation and authentication to a 2xx.
    calls = {op.label: sum(n for (label, _), n in statuses.items() if label == op.label) for op in operations}
    assert min(calls.values()) >= 1 and sum(calls.values()) >= len(operations) * MAX_EXAMPLES * 3 // 4, calls
    succeeded = {label for (label, status), n in statuses.items() if status == 2}
    assert len(succeeded) >= MIN_OPERATIONS - 4, sorted(statuses.items())


def test_every_documented_error_is_json(portal):
    """Errors are JSON everywhere, /metrics included (its 401 was described as text/plain, like its 200)."""
    paths = portal.get("/openapi.json")["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response.get("content", {})) == ["application/json"], (method, path, status)
    response = portal.client.get("/metrics")
    assert response.status_code == 401 and response.headers["content-type"] == "application/json"
