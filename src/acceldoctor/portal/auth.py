"""API tokens and roles. A token is `adp_<public id>_<secret>`; the database keeps the public id (to find the row)
and the sha256 of the whole token, compared in constant time. The secret itself is shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from acceldoctor.portal.db.engine import Database
from acceldoctor.portal.db.models import ApiToken, utcnow

TOKEN_PREFIX = "adp"


class Role(str, Enum):
    UPLOADER = "uploader"  # upload reports and feedback
    ENGINEER = "engineer"  # also change a problem's status and comment
    ADMIN = "admin"  # everything, tokens included

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class Caller:
    """Who made a request: a token's id, name and role; None for an anonymous reader (--public-read)."""

    token_id: int
    name: str
    role: Role

    @property
    def label(self) -> str:
        return self.name or f"token {self.token_id}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, role: Role, name: str = "") -> tuple[ApiToken, str]:
    """A new token row and the token itself (only the caller ever sees it)."""
    public_id = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{public_id}_{secrets.token_urlsafe(32)}"
    row = ApiToken(public_id=public_id, token_sha256=_digest(token), role=role.value, name=name[:200])
    session.add(row)
    session.flush()
    return row, token


def verify_token(session: Session, token: str) -> Caller | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.public_id == parts[1]))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.token_sha256, _digest(token)):
        return None
    return Caller(row.id, row.name, Role(row.role))


def find_caller(database: Database, token: str) -> Caller | None:
    """verify_token in a read session of its own: how every request, API or page, finds who is calling."""
    with database.read_session() as session:
        return verify_token(session, token)


def revoke_token(session: Session, token_id: int) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return True
