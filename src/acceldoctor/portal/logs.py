"""Structured logs: one JSON object per line on stderr (the server's own, uvicorn's and each request's)."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        entry |= getattr(record, "fields", {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    for name in ("acceldoctor.portal", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the request middleware logs each request itself


def uvicorn_log_config() -> dict:
    """For uvicorn.Config(log_config=...): leave logging as configure_logging set it."""
    return {"version": 1, "disable_existing_loggers": False}


def log_request(method: str, path: str, status: int, started: float, client: str | None) -> None:
    logging.getLogger("acceldoctor.portal").info("request", extra={"fields": {
        "method": method, "path": path, "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1e3, 1), "client": client}})
