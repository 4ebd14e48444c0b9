"""Upload load on a local portal: many nodes uploading at once, then a check that nothing was lost or duplicated.

For each backend (a fresh SQLite file; a fresh PostgreSQL database, created for the run and dropped after) it starts
`acceldoctor serve` as a subprocess, creates tokens with `acceldoctor portal token create`, and has --clients
threads (one keep-alive HTTP connection each) upload --reports distinct documents between them: mostly check reports,
and explain results and comparisons as nodes send them (portal_load_documents.py makes them, each a variation of a
real document acceldoctor makes at start-up; --template FILE gives the check report). A few percent of the documents
are sent again (a retrying client): they must be answered 200 and stored once under the same run_id. A 503 or a
dropped connection is retried with backoff, as a real client does, and counted. Afterwards it pages through
GET /api/v1/reports (every document present exactly once) and GET /api/v1/problems (the expected problems; every
event a 201 answer announced is in one, and one per failing check result), and times the fleet page GET / (warmed
up, then the median and p90 of --page-requests requests) against the 300 ms target.

    python benchmarks/portal_load.py [--reports 10000] [--clients 32] [--postgres URL] [--template FILE] [--quick]

PostgreSQL comes from --postgres or ACCELDOCTOR_TEST_POSTGRES_URL (a role that may CREATE DATABASE); without one,
only SQLite runs. Exit status 1 when a report was lost or duplicated, or a problem count is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from portal_load_documents import (
    failure_of,
    is_failing,
    kind_of,
    make_document,
    make_templates,
    run_id_of,
)
from portal_load_server import Server, create_postgres_database, create_token

RESEND_RATE = 0.03
PAGE_TARGET_MS = 300.0


# ---- the load ------------------------------------------------------------------------------------------------

@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, every answered attempt
    created: int = 0
    already: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    # what the server said it stored for each document index: run_id (derived by the server for explain and
    # compare results) and the events a first (201) upload added
    answered: dict[int, set[str]] = field(default_factory=dict)
    events_created: int = 0
    created_by_kind: dict[str, int] = field(default_factory=dict)
    first_stored: set[int] = field(default_factory=set)  # indices answered 201
    dropped: set[int] = field(default_factory=set)  # indices with an attempt whose answer never came

    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, index: int, kind: str, response: httpx.Response) -> None:
        answer = response.json()
        with self.lock:
            self.answered.setdefault(index, set()).add(answer["run_id"])
            if response.status_code == 201:
                self.first_stored.add(index)
                self.created += 1
                self.events_created += answer["events"]
                self.created_by_kind[kind] = self.created_by_kind.get(kind, 0) + 1
            else:
                self.already += 1


def upload_one(client: httpx.Client, body: bytes, host: str | None, index: int, kind: str, tally: Tally,
               attempts: int = 8) -> None:
    delay = 0.1
    params = {"host": host} if host else None
    for attempt in range(attempts):
        began = time.perf_counter()
        try:
            response = client.post("/api/v1/reports", content=body, params=params)
        except httpx.TransportError as exc:
            outcome, wait = f"transport: {exc!r}", delay
            with tally.lock:
                tally.dropped.add(index)
        else:
            elapsed = time.perf_counter() - began
            with tally.lock:
                tally.latencies.append(elapsed)
            if response.status_code in (200, 201):
                tally.record(index, kind, response)
                return
            if response.status_code != 503:
                with tally.lock:
                    tally.errors.append(f"{response.status_code}: {response.text[:200]}")
                return
            outcome, wait = "503", float(response.headers.get("retry-after", delay))
        if attempt + 1 < attempts:
            with tally.lock:
                tally.retries += 1
            time.sleep(min(max(wait, delay), 5.0) * random.uniform(0.5, 1.0))
            delay *= 2
    with tally.lock:
        tally.errors.append(f"gave up after {attempts} attempts: {outcome}")


def job_order(reports: int, seed: int) -> tuple[list[int], int]:
    """Every report once, and a few percent again a little later (some while the first send is in flight)."""
    rng = random.Random(seed)
    jobs = list(range(reports))
    resent = rng.sample(range(reports), max(1, int(reports * RESEND_RATE)))
    for index in sorted(resent, reverse=True):
        jobs.insert(min(len(jobs), index + 1 + rng.randrange(64)), index)
    return jobs, len(resent)


def run_load(url: str, token: str, templates: dict[str, dict], args) -> tuple[Tally, float, int]:
    jobs, resent = job_order(args.reports, args.seed)
    work: queue.Queue[int] = queue.Queue()
    for index in jobs:
        work.put(index)
    tally = Tally()

    def client_loop() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            while True:
                try:
                    index = work.get_nowait()
                except queue.Empty:
                    return
                document, host = make_document(templates, args.seed, index, args.nodes)
                upload_one(client, json.dumps(document).encode(), host, index, kind_of(args.seed, index), tally)

    threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - began, resent


# ---- verification and the page -------------------------------------------------------------------------------

def stored_run_ids(client: httpx.Client) -> tuple[list[str], int]:
    run_ids, offset, total = [], 0, 0
    while True:
        page = client.get("/api/v1/reports", params={"limit": 500, "offset": offset}).raise_for_status().json()
        total = page["total"]
        run_ids += [item["run_id"] for item in page["items"]]
        offset += len(page["items"])
        if not page["items"] or offset >= total:
            return run_ids, total


def expected_check_problems(args) -> tuple[set[str], int]:
    failing = [i for i in range(args.reports) if kind_of(args.seed, i) == "check" and is_failing(args.seed, i)]
    return {failure_of(args.seed, i)[2] for i in failing}, len(failing)


def expected_other_problems(templates: dict[str, dict], args) -> int:
    """Explain and compare problems: each finding and unrecognized error of the log is one problem whichever log
    it was read from, and the flipped bit is one problem whichever dumps it was found in."""
    kinds = {kind_of(args.seed, i) for i in range(args.reports)}
    divergent = any(kind_of(args.seed, i) == "compare" and i % 2 for i in range(args.reports))
    explain = templates["explain"]
    return (len(explain["findings"]) + len(explain["unrecognized"])) * ("explain" in kinds) + divergent


def all_problems(client: httpx.Client, **filters) -> list[dict]:
    items: list[dict] = []
    while True:
        page = client.get("/api/v1/problems", params={"limit": 200, "offset": len(items), **filters})
        page = page.raise_for_status().json()
        items += page["items"]
        if not page["items"] or len(items) >= page["total"]:
            return items


def verify(client: httpx.Client, tally: Tally, templates: dict[str, dict], args) -> dict:
    """Every document stored exactly once under the run_id the server answered, and every event in a problem."""
    run_ids, total = stored_run_ids(client)
    sent = set()
    for index in range(args.reports):
        answered = tally.answered.get(index, set())
        if kind_of(args.seed, index) == "check":
            answered = answered | {run_id_of(args.seed, index)}
        sent |= answered
    seen = set(run_ids)
    inconsistent = sum(len(ids) > 1 for ids in tally.answered.values())  # a resend answered with another run_id
    problems = all_problems(client)
    check_problems = all_problems(client, kind="result")
    kinds, failing = expected_check_problems(args)
    return {"total": total, "lost": len(sent - seen), "duplicated": len(run_ids) - len(seen),
            "unexpected": len(seen - sent), "inconsistent": inconsistent,
            "problems": len(problems),
            "problems_expected": len(kinds) + expected_other_problems(templates, args),
            "check_problems": len(check_problems), "check_problems_expected": len(kinds),
            "check_events": sum(p["count"] for p in check_problems), "check_events_expected": failing,
            "events": sum(p["count"] for p in problems), "events_expected": tally.events_created}


def time_fleet_page(client: httpx.Client, requests: int) -> tuple[str, list[float]]:
    path = "/"
    if client.get(path, follow_redirects=False).status_code != 200:
        path = "/api/v1/nodes"
    for _ in range(3):  # warm up
        client.get(path).raise_for_status()
    timings = []
    for _ in range(requests):
        began = time.perf_counter()
        client.get(path).raise_for_status()
        timings.append((time.perf_counter() - began) * 1000)
    return path, timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def run_backend(name: str, db: str, templates: dict[str, dict], args, workdir: Path) -> dict:
    uploader, admin = create_token(db, "uploader"), create_token(db, "admin")
    server = Server(db, workdir / f"{name}-server.log")
    try:
        tally, wall, resent = run_load(server.url, uploader, templates, args)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=120) as client:
            check = verify(client, tally, templates, args)
            page, page_ms = time_fleet_page(client, args.page_requests)
    finally:
        server.stop()
    ms = [t * 1000 for t in tally.latencies]
    return dict(backend=name, wall=wall, resent=resent, tally=tally, ms=ms, page=page, page_ms=page_ms, **check)


def print_backend(r: dict, args) -> None:
    t, ms, page = r["tally"], r["ms"], r["page_ms"]
    print(f"\n== {r['backend']}: {args.reports} reports (+{r['resent']} resent), {args.clients} clients, "
          f"{args.nodes} nodes")
    print(f"  wall {r['wall']:.1f} s, {args.reports / r['wall']:.1f} reports/s")
    print(f"  latency ms: p50 {percentile(ms, .5):.1f}  p90 {percentile(ms, .9):.1f}  p99 {percentile(ms, .99):.1f}"
          f"  max {max(ms, default=float('nan')):.1f}")
    by_kind = ", ".join(f"{kind} {count}" for kind, count in sorted(t.created_by_kind.items()))
    print(f"  answers: 201 x{t.created} ({by_kind}), 200 x{t.already}, retries {t.retries}, "
          f"errors {len(t.errors)}, stored by an attempt whose answer was lost {unseen_firsts(t)}")
    for error in t.errors[:5]:
        print(f"    {error}")
    print(f"  stored {r['total']}: lost {r['lost']}, duplicated {r['duplicated']}, unexpected {r['unexpected']}, "
          f"resends answered with another run_id {r['inconsistent']}")
    print(f"  problems {r['problems']} (expected {r['problems_expected']}; from check reports {r['check_problems']},"
          f" expected {r['check_problems_expected']}), events {r['events']} (the 201 answers added "
          f"{r['events_expected']}; from check reports {r['check_events']}, expected {r['check_events_expected']})")
    label = "fleet page GET /" if r["page"] == "/" else "fleet page missing (GET / not 200); GET /api/v1/nodes"
    median = statistics.median(page)
    print(f"  {label}: median {median:.1f} ms, p90 {percentile(page, .9):.1f} ms over {len(page)} requests "
          f"(target < {PAGE_TARGET_MS:.0f} ms: {'ok' if median < PAGE_TARGET_MS else 'MISSED'})")


def unseen_firsts(t: Tally) -> int:
    """Documents stored by an attempt whose 201 never arrived (the connection dropped after the commit): the retry
    was answered 200, so their events are in the database but not in events_created."""
    return len((t.dropped & set(t.answered)) - t.first_stored)


def failed(r: dict) -> bool:
    t = r["tally"]
    unseen = unseen_firsts(t)
    events_ok = r["events"] == r["events_expected"] if not unseen else r["events"] >= r["events_expected"]
    return bool(r["lost"] or r["duplicated"] or r["unexpected"] or r["inconsistent"] or t.errors
                or t.created + unseen != r["total"] or r["problems"] != r["problems_expected"]
                or r["check_problems"] != r["check_problems_expected"] or not events_ok
                or r["check_events"] != r["check_events_expected"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--nodes", type=int, default=300, help="Distinct hostnames the reports come from.")
    parser.add_argument("--postgres", default=os.environ.get("ACCELDOCTOR_TEST_POSTGRES_URL"))
    parser.add_argument("--template", type=Path, help="A report from `acceldoctor check --json` to vary.")
    parser.add_argument("--page-requests", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="A smoke run: 500 reports, 8 clients.")
    args = parser.parse_args()
    if args.quick:
        args.reports, args.clients = min(args.reports, 500), min(args.clients, 8)
    templates = make_templates(args.template, args.quick)
    check = templates["check"]
    print(f"check template: {len(check['results'])} results, {sum(len(r['metrics']) for r in check['results'])} "
          f"metrics, {len(json.dumps(check))} bytes; explain {len(json.dumps(templates['explain']))} bytes, "
          f"compare {len(json.dumps(templates['compare_bad']))} bytes")
    workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    results = []
    try:
        if args.backend in ("sqlite", "both"):
            results.append(run_backend("sqlite", f"sqlite:///{workdir / 'portal.db'}", templates, args, workdir))
            print_backend(results[-1], args)
        if args.backend in ("postgresql", "both"):
            if not args.postgres:
                print("\nno PostgreSQL: pass --postgres URL or set ACCELDOCTOR_TEST_POSTGRES_URL; SQLite only")
            else:
                url, drop = create_postgres_database(args.postgres)
                try:
                    results.append(run_backend("postgresql", url, templates, args, workdir))
                    print_backend(results[-1], args)
                finally:
                    drop()
    except BaseException:
        print(f"server logs kept in {workdir}")
        raise
    if len(results) == 2:
        lite, pg = results
        print(f"\nsqlite / postgresql: reports/s {pg['wall'] / lite['wall']:.2f}x, "
              f"p50 latency {percentile(lite['ms'], .5) / percentile(pg['ms'], .5):.2f}x, "
              f"fleet page {statistics.median(lite['page_ms']) / statistics.median(pg['page_ms']):.2f}x")
    bad = [r["backend"] for r in results if failed(r)]
    if bad:
        print(f"\nFAILED on {', '.join(bad)}: reports lost, duplicated or refused, or problems miscounted; "
              f"server logs in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
