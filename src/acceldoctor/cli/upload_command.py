"""`acceldoctor upload`, `acceldoctor feedback` and the upload of `acceldoctor check --upload`: standard library
only, so a node uploads without the `portal` extra."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from acceldoctor.cli.errors import UsageError
from acceldoctor.portal.client import (
    SCHEMAS,
    PortalError,
    check_token,
    check_url,
    describe_upload,
    file_feedback,
    read_upload,
    upload,
)

SEVERITIES = ("low", "medium", "high", "critical")
MAX_LOG_BYTES = 2**20  # the portal takes a log excerpt up to 1 MiB: the end of a longer log is sent


def portal_target(url: str, token: str | None) -> tuple[str, str]:
    try:
        return check_url(url), check_token(token)
    except PortalError as exc:
        raise UsageError(str(exc)) from None


def run_upload(files: list[Path], url: str, token: str | None, host: str | None) -> int:
    if not files:
        raise UsageError("give one or more files to upload (the --json output of check, stress, explain or compare)")
    base, token = portal_target(url, token)
    try:
        items = [read_upload(str(path)) for path in files]
    except PortalError as exc:
        raise UsageError(f"{exc}; nothing was uploaded") from None
    host = host or socket.gethostname()
    for done, item in enumerate(items):
        try:
            answer = upload(base, token, item, host)
        except PortalError as exc:
            before = f" ({done} file(s) before it were uploaded)" if done else ""
            raise UsageError(f"{item.path}: {exc}{before}") from None
        sys.stdout.write(describe_upload(item.path, answer) + "\n")
    return 0


def upload_check_report(path: str, url: str, token: str) -> None:
    """After `acceldoctor check --upload`: send the report just written (rank 0 writes it; other ranks have none)."""
    if not Path(path).exists():
        return
    try:
        answer = upload(url, token, read_upload(path), socket.gethostname())
    except PortalError as exc:
        raise UsageError(f"the upload failed: {exc}") from None
    sys.stdout.write(describe_upload(path, answer) + "\n")


def _attachment(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --attach {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict) and document.get("schema") in SCHEMAS:
        return {"report": document}
    return {"log_excerpt": data[-MAX_LOG_BYTES:].decode("utf-8", errors="replace")}


def run_feedback(title: str, description: str, severity: str, attach: Path | None, url: str, token: str | None,
                 host: str | None) -> int:
    if severity not in SEVERITIES:
        raise UsageError(f"unknown --severity {severity!r}; choose one of {', '.join(SEVERITIES)}")
    if not title.strip() or len(title) > 200:
        raise UsageError("the title must be 1 to 200 characters")
    base, token = portal_target(url, token)
    payload = {"title": title, "description": description, "severity": severity,
               "host": (host or socket.gethostname())[:255]}
    if attach is not None:
        payload |= _attachment(attach)
    try:
        answer = file_feedback(base, token, payload)
    except PortalError as exc:
        raise UsageError(str(exc)) from None
    problems = answer.get("problems") or []
    sys.stdout.write(f"filed feedback {answer.get('id')}: linked to {len(problems)} problem(s)\n")
    for p in problems:
        sys.stdout.write(f"  problem {p['id']} [{p['status']}] {p['title']}: {p['count']} event(s) on "
                         f"{p['node_count']} node(s), {p['feedback_count']} feedback\n")
    return 0
