"""Run ids and hostnames become one segment of a URL path (/api/v1/reports/{run_id}, /api/v1/nodes/{hostname} and
the pages): one that could not be read back that way is refused at upload, instead of stored where nobody can open
it. Real ones (a uuid4 hex, the kernel's hostname) always pass."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from acceldoctor.portal.db.models import Node, StoredReport

from .conftest import make_report
from .test_ingest import OOM_FINDING, explain_document


def _refused(portal, answer, field: str) -> None:
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(field) and "\n" not in detail and "nothing was stored" in detail, detail
    assert portal.count(StoredReport) == 0 and portal.count(Node) == 0


@pytest.mark.parametrize("run_id", ["2024/05/run-1", "..", ".", "run\n1", "run\t1", "run\x001", "run\x7f1"])
def test_a_run_id_that_cannot_be_a_path_segment_is_refused(portal, run_id):
    _refused(portal, portal.upload(make_report(run_id=run_id)), "run_id")


@pytest.mark.parametrize("hostname", ["rack7/node3", "..", "node\n3", "node\x1b[31m", "", "   ", "n" * 256])
def test_a_hostname_that_cannot_be_a_path_segment_is_refused(portal, hostname):
    _refused(portal, portal.upload(make_report(host=hostname)), "host.hostname")


def test_an_explain_result_under_a_host_that_cannot_be_a_path_segment_is_refused(portal):
    answer = portal.upload(explain_document(OOM_FINDING), host="rack7/node3")
    _refused(portal, answer, "the host parameter")


@pytest.mark.parametrize("odd", ["run 1", "run?1", "run#1", "rün:1", "run\\1", "run;1", " run1", "run\u20281"])
def test_odd_but_addressable_ids_are_stored_and_read_back(portal, odd):
    # the pages quote a segment with safe="" (web/render.py's `q`); the API's clients do the same
    report = make_report(host="host-" + odd, run_id=odd)
    assert portal.upload(report).status_code == 201
    assert portal.get("/api/v1/reports/" + quote(odd, safe=""))["run_id"] == odd
    assert portal.get("/api/v1/nodes/" + quote("host-" + odd, safe=""))["hostname"] == "host-" + odd


def test_a_real_report_passes(portal):
    report = make_report(host="gpu-node-017.cluster.example.com")  # run_id: a uuid4 hex, as the CLI writes it
    assert portal.upload(report).status_code == 201
    assert portal.get(f"/api/v1/reports/{report['run_id']}")["host"] == "gpu-node-017.cluster.example.com"
