"""The upload client: `acceldoctor upload`, `acceldoctor feedback` and `acceldoctor check --upload`.

Standard library only (urllib), so that a node needs no more than `pip install acceldoctor` to upload. An upload is
retried on 5xx and on a dropped connection: the portal stores a run_id once, so a retry cannot duplicate it.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

TOKEN_ENV = "ACCELDOCTOR_TOKEN"
SCHEMAS = ("acceldoctor.report/1", "acceldoctor.explain/1", "acceldoctor.compare/1")
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
TIMEOUT_S = 60.0


class PortalError(Exception):
    """One line for the user: why the portal could not be reached or refused the request."""


@dataclass
class Upload:
    path: str
    document: dict[str, Any]
    body: bytes

    @property
    def needs_host(self) -> bool:
        return self.document.get("schema") != "acceldoctor.report/1"


def check_url(url: str) -> str:
    """The portal's base URL without a trailing slash, or PortalError when it is not an http(s) URL."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise PortalError(f"--url {url!r} is not an http:// or https:// URL of the portal")
    return url.rstrip("/")


def check_token(token: str | None) -> str:
    if not token or not token.strip():
        raise PortalError(f"a token is needed: --token TOKEN or the environment variable {TOKEN_ENV} "
                          "(an admin creates one with `acceldoctor portal token create --role uploader`)")
    return token.strip()


def read_upload(path: str) -> Upload:
    """A file to upload, read and checked here: a file that is not an acceldoctor document is refused before any
    request is made."""
    try:
        with open(path, "rb") as f:
            body = f.read()
    except OSError as exc:
        raise PortalError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PortalError(f"{path} is not JSON ({str(exc).splitlines()[0]}); upload the --json output of "
                          "check, stress, explain or compare") from None
    if not isinstance(document, dict) or document.get("schema") not in SCHEMAS:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise PortalError(f"{path} is not an acceldoctor report, explain result or comparison (schema {found!r}; "
                          f"expected one of {', '.join(SCHEMAS)})")
    return Upload(path, document, body)


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(error.read() or b"{}")
        detail = payload.get("detail") if isinstance(payload, dict) else None
    except (ValueError, OSError):
        detail = None
    return str(detail) if detail else error.reason or "no reason given"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows a redirect of a POST as a GET without its body, token included, even to another host: an
    http-to-https proxy would turn an upload into a read that looks like success. A redirect is an error here."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise PortalError(f"the portal at {req.full_url} redirects ({code}) to {newurl}: use that address as --url")


_OPENER = urllib.request.build_opener(_NoRedirects())


def request_json(method: str, url: str, token: str, payload: bytes | None = None) -> dict:
    """One API request, retried on 5xx and dropped connections; its JSON answer, or PortalError."""
    last = ""
    for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
        request = urllib.request.Request(url, data=payload, method=method, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with _OPENER.open(request, timeout=TIMEOUT_S) as response:
                answer = json.loads(response.read() or b"{}")
            if not isinstance(answer, dict):
                raise PortalError(f"{url} did not answer as the portal does (a JSON {type(answer).__name__})")
            return answer
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            if exc.code == 401:
                raise PortalError(f"the portal refused the token (401): {detail}") from None
            if exc.code == 403:
                raise PortalError(f"the token may not do this (403): {detail}") from None
            if exc.code < 500:
                raise PortalError(f"the portal refused it ({exc.code}): {detail}") from None
            last = f"the portal failed ({exc.code}): {detail}"
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionResetError | ConnectionAbortedError | TimeoutError):
                raise PortalError(f"cannot reach the portal at {url}: {exc.reason}") from None
            last = f"cannot reach the portal at {url}: {exc.reason}"
        except (ConnectionError, TimeoutError) as exc:  # dropped mid-answer: retry
            last = f"the connection to {url} failed: {exc}"
        except http.client.HTTPException as exc:  # not an HTTP server at all (an SSH port, say)
            raise PortalError(f"{url} does not answer as an HTTP server ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:
            raise PortalError(f"the portal's answer is not JSON: {exc}") from None
        if delay is None:
            break
        time.sleep(delay * (1 + attempt))
    raise PortalError(f"{last} (tried {len(RETRY_DELAYS_S) + 1} times)")


def upload(base_url: str, token: str, item: Upload, host: str) -> dict:
    url = f"{base_url}/api/v1/reports"
    if item.needs_host:
        url += "?" + urllib.parse.urlencode({"host": host})
    return request_json("POST", url, token, item.body)


def file_feedback(base_url: str, token: str, payload: dict) -> dict:
    body = json.dumps(payload).encode()
    return request_json("POST", f"{base_url}/api/v1/feedback", token, body)


def describe_upload(path: str, answer: dict) -> str:
    """One line per uploaded file: what the portal stored."""
    if "run_id" not in answer or "stored" not in answer:
        raise PortalError(f"{path}: the portal's answer does not say what it stored: is --url the portal?")
    if not answer.get("stored", True):
        if answer.get("expired_at"):
            return (f"{path}: already received as {answer.get('run_id')}, and deleted by the portal's retention on "
                    f"{str(answer['expired_at'])[:10]} (nothing stored again)")
        return f"{path}: already stored as {answer.get('run_id')} (nothing stored twice)"
    problems = answer.get("problems") or []
    new = sum(1 for p in problems if p.get("new"))
    regressed = sum(1 for p in problems if p.get("status") == "regressed")
    parts = [f"{answer.get('results', 0)} result(s)"] if answer.get("kind") in ("check", "stress") else []
    parts.append(f"{answer.get('events', 0)} event(s) in {len(problems)} problem(s) ({new} new"
                 + (f", {regressed} regressed" if regressed else "") + ")")
    return f"{path}: stored {answer.get('kind')} {answer.get('run_id')} from {answer.get('host')}: {', '.join(parts)}"
