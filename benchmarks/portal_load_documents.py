"""The documents benchmarks/portal_load.py uploads: check reports, explain results and comparisons, each a variation
of one real document made by acceldoctor itself at start-up, and each reproducible from (seed, index) so that a
resent upload is byte for byte the same document.

- check reports (most uploads): one real `acceldoctor check --json` report with its own run_id, one of a few hundred
  hostnames, a start time spread over weeks and noisy metric values; a few percent fail with messages that group
  into a handful of problems (FAILURES);
- explain results (EXPLAIN_SHARE): `acceldoctor explain --json` of a job log with two known errors and one unknown
  error line, as if read from another log file on another node;
- comparisons (COMPARE_SHARE): `acceldoctor compare --json` of a tiny MLP, half healthy (float32 against bfloat16)
  and half with a bit flip injected into one run, as if recorded into other dump folders on another node.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

PROBLEM_STATUSES = ("fail", "timeout", "crash")
FAILURE_RATE = 0.04
EXPLAIN_SHARE = 0.10
COMPARE_SHARE = 0.05
# (check, status, message): each varies only in numbers, devices and durations, so each is one problem.
FAILURES = (
    ("correctness.matmul", "fail", "float16 matmul wrong at element ({i}, {j}) on {device}: off by {n} ULPs"),
    ("environment.memory_pattern", "fail", "memory pattern 0x{hex} read back wrong at offset {n} on {device}"),
    ("determinism.reduction", "fail", "reduction gave {n} different sums over 8 runs of {i} elements"),
    ("correctness.attention", "timeout", "attention did not finish in {s:.1f} s on {device} (hung)"),
)
BASE_TIME = datetime(2026, 11, 28, tzinfo=timezone.utc)

JOB_LOG = """\
2026-11-28 10:00:01 INFO starting training on 8 ranks
2026-11-28 10:05:12 [rank3] RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 3; 79.35 GiB total \
capacity; 75.10 GiB already allocated)
2026-11-28 10:05:13 [rank1] [E ProcessGroupNCCL.cpp:475] Watchdog caught collective operation timeout: \
WorkNCCL(SeqNum=1042, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600012 milliseconds before timing out.
2026-11-28 10:05:14 ERROR frobnicator widget 0x7f3a exploded in sector 12
"""
TINY_MODEL = """\
import torch

def build(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 8))
    return model, (torch.randn(16, 32),)
"""


# ---- templates: real documents, made once ---------------------------------------------------------------------

def _run_to_json(command: list[str], out: Path) -> dict:
    print(f"making a template: {' '.join(command)}", flush=True)
    # exit 1 is the tool saying "found a problem", which these templates are meant to contain
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
                          timeout=900)
    if not out.exists():
        raise RuntimeError(f"{' '.join(command)} wrote no JSON (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(out.read_text())


def make_templates(check_template: Path | None, quick: bool) -> dict[str, dict]:
    """{"check": report, "explain": result, "compare_ok": comparison, "compare_bad": comparison}."""
    work = Path(tempfile.mkdtemp(prefix="portal-load-templates-"))
    if check_template is not None:
        check = json.loads(check_template.read_text())
    else:
        command = ["acceldoctor", "check", "--device", "cpu", "--level", "quick", "--json", str(work / "check.json")]
        if quick:
            command += ["-k", "correctness.matmul", "-k", "environment.*"]
        check = _run_to_json(command, work / "check.json")
    (work / "job.log").write_text(JOB_LOG)
    explain = _run_to_json(["acceldoctor", "explain", str(work / "job.log"), "--json", str(work / "explain.json")],
                           work / "explain.json")
    (work / "tiny_mlp.py").write_text(TINY_MODEL)
    model = f"{work / 'tiny_mlp.py'}:build"
    compare_ok = _run_to_json(["acceldoctor", "compare", "--model", model, "--dtypes", "float32,bfloat16",
                               "--steps", "2", "--json", str(work / "ok.json")], work / "ok.json")
    compare_bad = _run_to_json(["acceldoctor", "compare", "--model", model, "--devices", "cpu,cpu", "--steps", "2",
                                "--inject", "bitflip:1@b", "--json", str(work / "bad.json")], work / "bad.json")
    if compare_ok["equivalent"] is not True or compare_bad["equivalent"] is not False:
        raise RuntimeError(f"the comparison templates in {work} did not come out healthy and divergent")
    return {"check": check, "explain": explain, "compare_ok": compare_ok, "compare_bad": compare_bad}


# ---- one document per (seed, index) ---------------------------------------------------------------------------

def kind_of(seed: int, index: int) -> str:
    draw = random.Random(f"{seed}:{index}:kind-of-document").random()
    return "explain" if draw < EXPLAIN_SHARE else "compare" if draw < EXPLAIN_SHARE + COMPARE_SHARE else "check"


def hostname_of(seed: int, index: int, nodes: int) -> str:
    return f"node-{random.Random(seed * 7_919 + index).randrange(nodes):04d}"


def run_id_of(seed: int, index: int) -> str:
    return f"load-{seed}-{index:06d}-{random.Random(seed * 1_000_003 + index).getrandbits(64):016x}"


def is_failing(seed: int, index: int) -> bool:
    return random.Random(f"{seed}:{index}:fail").random() < FAILURE_RATE


def failure_of(seed: int, index: int) -> tuple[str, str, str]:
    return random.Random(f"{seed}:{index}:kind").choice(FAILURES)


def make_report(template: dict, seed: int, index: int, nodes: int) -> dict:
    """Check report `index` of the run."""
    rng = random.Random(seed * 7_919 + index)
    report = copy.deepcopy(template)
    report["run_id"] = run_id_of(seed, index)
    report["host"]["hostname"] = f"node-{rng.randrange(nodes):04d}"
    started = BASE_TIME - timedelta(seconds=rng.uniform(0, 6 * 7 * 86_400))
    report["started_at"] = started.isoformat()
    report["finished_at"] = (started + timedelta(seconds=rng.uniform(20, 90))).isoformat()
    for result in report["results"]:
        result["status"], result["duration_s"] = "pass", round(rng.uniform(0.05, 5.0), 3)
        for metric in result["metrics"]:
            if isinstance(metric.get("value"), (int, float)) and not isinstance(metric["value"], bool):
                metric["value"] = metric["value"] * (1 + rng.gauss(0, 0.02))
    if is_failing(seed, index) and report["results"]:
        check, status, message = failure_of(seed, index)
        device = report["devices"][0]["id"] if report["devices"] else "cpu"
        result = report["results"][rng.randrange(len(report["results"]))]
        result.update(check=check, status=status, device=device, doc=check, message=message.format(
            i=rng.randrange(1, 4096), j=rng.randrange(1, 4096), n=rng.randrange(2, 10**6), device=device,
            hex=f"{rng.getrandbits(32):08x}", s=rng.uniform(30, 600)))
    summary: dict[str, int] = {}
    for result in report["results"]:
        summary[result["status"]] = summary.get(result["status"], 0) + 1
    report["summary"] = summary
    report["exit_code"] = 1 if any(r["status"] in PROBLEM_STATUSES for r in report["results"]) else 0
    return report


def _renamed(document: dict, old: str, new: str) -> dict:
    """`document` with every string holding `old` holding `new` instead (a path, as another run would have it)."""
    return json.loads(json.dumps(document).replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1]))


def make_explain(template: dict, seed: int, index: int) -> dict:
    """The explain result of another job's log: the same errors, read from /var/log/jobs/job-<index>.log."""
    document = copy.deepcopy(template)
    path = f"/var/log/jobs/job-{seed}-{index:06d}.log"
    for old in template["files"]:
        document = _renamed(document, old, path)
    return document


def make_compare(templates: dict[str, dict], seed: int, index: int) -> dict:
    """A comparison of other dump folders: healthy or, for every other index, with a flipped bit in run B."""
    document = copy.deepcopy(templates["compare_bad" if index % 2 else "compare_ok"])
    for side in ("a", "b"):
        document["runs"][side]["path"] = f"/scratch/dumps/run-{seed}-{index:06d}-{side}"
    return document


def make_document(templates: dict[str, dict], seed: int, index: int, nodes: int) -> tuple[dict, str | None]:
    """Document `index` and the hostname to upload it for (None: a report names its own host)."""
    kind = kind_of(seed, index)
    if kind == "check":
        return make_report(templates["check"], seed, index, nodes), None
    document = (make_explain(templates["explain"], seed, index) if kind == "explain"
                else make_compare(templates, seed, index))
    return document, hostname_of(seed, index, nodes)
