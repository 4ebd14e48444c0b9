"""Who is looking at a page: a token from the login cookie or an `Authorization: Bearer` header, and the CSRF
token that every form which writes must carry.

The login page stores the API token itself in an HttpOnly, SameSite=Strict cookie (Secure over https): the portal
keeps no session table, and revoking the token (`DELETE /api/v1/tokens/{id}`) logs the browser out too. The CSRF
token is derived from the login token (an HMAC keyed by it), so it is the same for the whole login, needs no
storage, and cannot be computed by a page on another site, which never sees the cookie. SameSite=Strict already
keeps other sites' forms from sending the cookie; the CSRF field is the second lock. Logging out is a form too (a
link or an <img> on another page must not end a login).

Logging in happens before there is a login token to derive a CSRF token from, and a forged login (another site's
form posting *its* token, so that the victim files feedback as the attacker) needs a lock of its own. The login page
sets a random nonce in a pre-login cookie (HttpOnly, SameSite=Strict, path /login) and puts the same nonce in the
form: a post is accepted only when the two agree (double submit). Another site can neither read the cookie nor, being
cross-site, have it sent. A sibling subdomain could plant such a cookie (cookie tossing), so a post whose
`Sec-Fetch-Site` says it came from another origin is refused too; browsers set that header and pages cannot. The
nonce needs no server state and works behind any proxy, where comparing `Origin` with the Host the server sees would
depend on how the proxy rewrites it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Request

from acceldoctor.portal.api.deps import portal_state
from acceldoctor.portal.auth import Caller, Role, find_caller

COOKIE = "acceldoctor_token"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"  # for a script that posts without the form; the pages send the form field
LOGIN_NONCE_COOKIE = "acceldoctor_login_nonce"
LOGIN_NONCE_PATH = "/login"  # sent with the login form's post only
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # Sec-Fetch-Site of a post from the portal's own page
MAX_FORM_BYTES = 2 * 2**20
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


class LoginRequired(Exception):
    """A page that needs a login was asked for without one: answered with a redirect to /login."""

    def __init__(self, next_path: str, reason: str = ""):
        self.next_path, self.reason = next_path, reason


class PageError(Exception):
    """An error page (404 for an unknown id, 403 for a role that may not, 400 for a bad form)."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


@dataclass(frozen=True)
class Viewer:
    """The person behind a page request: a token's caller, or None when reading anonymously (--public-read)."""

    caller: Caller | None
    token: str | None
    public_read: bool

    @property
    def csrf(self) -> str:
        return csrf_token(self.token) if self.token else ""

    def may(self, role: str) -> bool:
        return self.caller is not None and self.caller.role.allows(Role(role))


def csrf_token(login_token: str) -> str:
    return hmac.new(login_token.encode("utf-8", "surrogatepass"), b"acceldoctor-csrf/1", hashlib.sha256).hexdigest()


def csrf_matches(login_token: str, sent: str) -> bool:
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), csrf_token(login_token).encode())


def login_nonce(request: Request) -> str:
    """The nonce the login form carries: the browser's pre-login cookie when it has a well-formed one (two login tabs
    share it), else a new one, which the login page then sets."""
    kept = request.cookies.get(LOGIN_NONCE_COOKIE, "")
    return kept if _NONCE.fullmatch(kept) else secrets.token_urlsafe(32)


def login_is_forged(request: Request, fields: dict[str, str]) -> bool:
    """A login post that did not come from this portal's own login page (see the module's docstring)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in SAME_ORIGIN_FETCH:
        return True
    kept, sent = request.cookies.get(LOGIN_NONCE_COOKIE, ""), fields.get(CSRF_FIELD, "")
    return not kept or not hmac.compare_digest(kept.encode(), sent.encode("utf-8", "surrogatepass"))


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _here(request: Request) -> str:
    """Where to come back to after logging in: this page; for a form's post (not a page) the page htmx posted it
    from, else the fleet."""
    if request.method != "GET":
        current = urlsplit(request.headers.get("hx-current-url", "")) if is_htmx(request) else None
        if current and current.path:
            return safe_next(current.path + (f"?{current.query}" if current.query else ""))
        return "/"
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def viewer(request: Request) -> Viewer:
    """Dependency of every page: the viewer, or a redirect to /login when reading needs a token."""
    state = portal_state(request)
    token = _presented_token(request)
    if token is None:
        if state.settings.public_read:
            return Viewer(None, None, True)
        raise LoginRequired(_here(request))
    caller = find_caller(state.database, token)
    if caller is None:
        raise LoginRequired(_here(request), "The saved token is no longer valid (unknown or revoked): log in again.")
    return Viewer(caller, token, state.settings.public_read)


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(safe_next(next_path), safe="")


def safe_next(path: str | None) -> str:
    """Only a path on this server: never `//host` or `https://host` (an open redirect). Control characters are
    refused too: browsers drop tabs and newlines from a URL, so `/<TAB>/host` in a link would become `//host`."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path \
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "/"
    return path


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the only kind the pages post), the first value of each field."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "The form is too large.")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "The form could not be read.") from None
    return {name: values[0] for name, values in parsed.items()}


def check_write(view: Viewer, fields: dict[str, str], request: Request, role: str, back: str) -> Caller:
    """A form that writes: a login with `role` or higher, and the right CSRF token (field or htmx header).
    `back` is the page to return to after logging in."""
    if view.caller is None or view.token is None:
        raise LoginRequired(back)
    if not csrf_matches(view.token, fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")):
        raise PageError(403, "The form's security token is missing or out of date: reload the page and try again.")
    if not view.caller.role.allows(Role(role)):
        raise PageError(403, f"This needs the {role} role (or higher); you are logged in as {view.caller.role.value}.")
    return view.caller
