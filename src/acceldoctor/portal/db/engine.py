"""Engines and sessions for SQLite and PostgreSQL, and the migrations run at start-up.

SQLite serves concurrent uploaders: WAL (readers never wait for the writer), a busy timeout (a writer waits for the
other instead of failing), and write transactions begin IMMEDIATE: a deferred transaction that reads and then writes
can fail at once with "database is locked" when another writer committed in between, without waiting.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from acceldoctor.portal.settings import sqlalchemy_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "acceldoctor_write"


def make_engine(url: str) -> Engine:
    url = sqlalchemy_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                  "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below issues BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed upload survives a power cut, not only a crash of the server.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The engine and two session factories: one for reads, one for writes (IMMEDIATE on SQLite)."""

    def __init__(self, url: str):
        self.url = sqlalchemy_url(url)
        self.engine = make_engine(self.url)
        self.reader = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.writer = sessionmaker(bind=self.engine.execution_options(**{WRITE_OPTION: True}),
                                   expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def write_session(self) -> Session:
        return self.writer()

    def read_session(self) -> Session:
        return self.reader()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(connection=None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("acceldoctor.portal.db") / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(database: Database) -> None:
    """Bring the schema up to the newest migration (idempotent; run by `serve` and `portal token create`)."""
    from alembic import command

    with database.engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
