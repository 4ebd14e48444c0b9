"""What `acceldoctor serve` is started with, and where its database lives by default."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 16 * 2**20
# How far ahead of the server's clock a node's may be before its report's times are not believed (ingest.py).
DEFAULT_MAX_CLOCK_SKEW_S = 300.0


def data_directory() -> Path:
    """The user's data directory for acceldoctor (XDG on Linux, the platform's own elsewhere)."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "acceldoctor"


def default_database_url() -> str:
    return f"sqlite:///{data_directory() / 'portal.db'}"


def sqlalchemy_url(url: str) -> str:
    """Users write `postgresql://...` (as psql does); SQLAlchemy needs the driver named: psycopg 3."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}" if ":" in credentials else url


@dataclass(frozen=True)
class PortalSettings:
    database_url: str
    public_read: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retention_days: int | None = None  # None: keep everything
    retention_interval_s: float = 3600.0
    max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
