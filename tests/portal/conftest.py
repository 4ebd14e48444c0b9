"""Fixtures for the portal tests: every database test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ACCELDOCTOR_TEST_POSTGRES_URL (a role that may CREATE DATABASE): each test session makes a
fresh database of its own and drops it at the end. Without the variable the PostgreSQL cases skip, except under CI
(`CI` set), where a missing or unreachable server fails them: CI must test both backends.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the portal's packages are not installed: pip install -e '.[test]'")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from acceldoctor.portal.app import create_app  # noqa: E402
from acceldoctor.portal.auth import Role, create_token  # noqa: E402
from acceldoctor.portal.db.engine import Database, migrate  # noqa: E402
from acceldoctor.portal.db.models import Base  # noqa: E402
from acceldoctor.portal.settings import PortalSettings, sqlalchemy_url  # noqa: E402
from acceldoctor.report.model import DeviceInfo, HostInfo, Metric, Report, Result, Status  # noqa: E402

POSTGRES_ENV = "ACCELDOCTOR_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]
DEVICE_MODEL = "Acme Tensor X1"


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: the PostgreSQL tests must run (.ci/run starts a server)",
                    pytrace=False)
    pytest.skip(f"{reason}: PostgreSQL tests skipped")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        _unavailable(f"{POSTGRES_ENV} is not set (postgresql://USER:PASSWORD@HOST/DB)")
    admin = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    name = f"acceldoctor_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        _unavailable(f"PostgreSQL at {POSTGRES_ENV} cannot be used: {str(exc).splitlines()[0]}")
    fresh = make_url(sqlalchemy_url(url)).set(database=name).render_as_string(hide_password=False)
    database = Database(fresh)
    migrate(database)
    database.dispose()
    yield fresh
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "portal.db"
    database = Database(f"sqlite:///{path}")
    migrate(database)
    database.dispose()
    return path


def _empty_postgres(url: str) -> Database:
    database = Database(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return database


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path) -> Iterator[Database]:
    """An empty, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "portal.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
    else:
        database = _empty_postgres(request.getfixturevalue("postgres_url"))
    yield database
    database.dispose()


class Portal:
    """A portal app on a test database, with a token of each role."""

    def __init__(self, database: Database, **settings):
        self.database = database
        self.settings = PortalSettings(database_url=database.url, **settings)
        self.app = create_app(self.settings, database)
        self.client = TestClient(self.app)
        self.tokens = {}
        with database.write_session() as session:
            for role in Role:
                self.tokens[role.value] = create_token(session, role, f"{role.value} tester")[1]
            session.commit()

    def headers(self, role: str | None = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def upload(self, document: dict, role: str = "uploader", host: str | None = None):
        params = {"host": host} if host else None
        return self.client.post("/api/v1/reports", json=document, params=params, headers=self.headers(role))

    def get(self, path: str, role: str | None = "admin", **params):
        response = self.client.get(path, headers=self.headers(role), params=params or None)
        assert response.status_code == 200, response.text
        return response.json()

    def count(self, table) -> int:
        from sqlalchemy import func, select

        with self.database.read_session() as session:
            return session.scalar(select(func.count()).select_from(table))


@pytest.fixture
def portal(database) -> Portal:
    return Portal(database)


@pytest.fixture
def make_portal(database):
    return lambda **settings: Portal(database, **settings)


def make_report(host: str = "node-1", run_id: str | None = None, results: list[tuple] | None = None,
                started_at: datetime | None = None, model: str = DEVICE_MODEL, stress: bool = False) -> dict:
    """A report as `acceldoctor check --json` writes it. results: (check, device, status, message) tuples."""
    started = started_at or datetime.now(timezone.utc)
    rows = results if results is not None else [("correctness.matmul", "cuda:0", "pass", "matmul agrees")]
    report = Report(
        run_id=run_id or secrets.token_hex(16), started_at=started.isoformat(), finished_at=started.isoformat(),
        host=HostInfo(hostname=host, os="Linux-6.1", python="3.11.7", torch="2.13.0", stack={"cuda": "12.4"}),
        devices=[DeviceInfo(id=f"cuda:{i}", name=model, vendor="acme", memory_bytes=80 * 2**30,
                            driver_version="550.54") for i in range(2)],
        results=[Result(check=check, device=device, status=Status(status), message=message, doc=check,
                        duration_s=0.5, metrics=[Metric(name="tflops", value=12.5, unit="TFLOP/s", dtype="float32")])
                 for check, device, status, message in rows],
        timeline={"cuda:0": []} if stress else None,
    )
    report.refresh_summary()
    report.exit_code = 1 if any(Status(r[2]).is_problem for r in rows) else 0
    return report.model_dump(mode="json", by_alias=True)


def failing(check: str = "correctness.matmul", device: str = "cuda:0", message: str | None = None) -> tuple:
    return (check, device, "fail", message or f"float16 matmul wrong at element (3, 17) on {device}: off by "
            "4096 ULPs after 12.5 s")
