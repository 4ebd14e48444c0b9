"""A node's clock is believed up to the time the server received its report (plus an allowed skew, 5 minutes by
default): a report dated years ahead would otherwise stay its node's latest run and its problems' last seen until
then. The stored document keeps the time the node wrote."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .conftest import failing, make_report

FAR_AHEAD = datetime(2099, 1, 1, tzinfo=timezone.utc)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_report_dated_in_the_future_counts_as_received_now(portal):
    ahead = make_report("node-a", results=[failing()], started_at=FAR_AHEAD)
    assert portal.upload(ahead).status_code == 201
    stored = portal.get(f"/api/v1/reports/{ahead['run_id']}")
    assert stored["started_at"] == stored["received_at"] and stored["finished_at"] == stored["received_at"]
    assert stored["document"]["started_at"] == ahead["started_at"]  # as the node wrote it
    problem = portal.get("/api/v1/problems")["items"][0]
    assert _when(problem["last_seen"]).year < 2099
    assert all(_when(s["last_seen"]).year < 2099 for s in portal.get(f"/api/v1/problems/{problem['id']}")["sightings"])

    later = make_report("node-a", results=[failing()])  # the next run, on a node whose clock was fixed
    assert portal.upload(later).status_code == 201
    assert portal.get("/api/v1/nodes/node-a")["latest_report"]["run_id"] == later["run_id"]
    problem = portal.get("/api/v1/problems")["items"][0]
    assert (problem["count"], _when(problem["last_seen"])) == (2, _when(later["started_at"]))


def test_a_normal_report_keeps_its_own_times(portal):
    started = datetime.now(timezone.utc) - timedelta(hours=3)
    report = make_report("node-a", results=[failing()], started_at=started)
    assert portal.upload(report).status_code == 201
    stored = portal.get(f"/api/v1/reports/{report['run_id']}")
    assert _when(stored["started_at"]) == started and _when(stored["received_at"]) > started
    assert _when(portal.get("/api/v1/problems")["items"][0]["last_seen"]) == started


def test_a_clock_a_little_ahead_is_believed(portal):
    # within the allowed skew: two clocks that disagree by a minute are both right enough
    started = datetime.now(timezone.utc) + timedelta(minutes=1)
    report = make_report("node-a", started_at=started)
    assert portal.upload(report).status_code == 201
    assert _when(portal.get(f"/api/v1/reports/{report['run_id']}")["started_at"]) == started


def test_the_allowed_skew_is_a_setting(make_portal):
    portal = make_portal(max_clock_skew_s=0)
    report = make_report("node-a", started_at=datetime.now(timezone.utc) + timedelta(minutes=1))
    assert portal.upload(report).status_code == 201
    stored = portal.get(f"/api/v1/reports/{report['run_id']}")
    assert stored["started_at"] == stored["received_at"]


def test_a_run_that_ends_ahead_of_the_clock_keeps_its_length(portal):
    # a node 6 minutes ahead uploads a 2-minute run as it ends: its start alone (4 minutes ahead) would be believed
    started = datetime.now(timezone.utc) + timedelta(minutes=4)
    report = make_report("node-a", results=[failing()], started_at=started)
    report["finished_at"] = (started + timedelta(minutes=2)).isoformat()
    assert portal.upload(report).status_code == 201
    stored = portal.get(f"/api/v1/reports/{report['run_id']}")
    assert stored["finished_at"] == stored["received_at"]
    assert _when(stored["finished_at"]) - _when(stored["started_at"]) == timedelta(minutes=2)
