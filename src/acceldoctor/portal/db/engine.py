"""Engines and sessions for SQLite and PostgreSQL, and the migrations run at start-up.

SQLite serves concurrent uploaders: WAL (readers never wait for the writer), a busy timeout (a writer waits for the
other instead of failing), and write transactions begin IMMEDIATE: a deferred transaction that reads and then writes
can fail at once with "database is locked" when another writer committed in between, without waiting. Within the
server, writers also queue first come, first served (WriteQueue) before they ask SQLite: its busy handler retries by
sleeping, which is not fair, and under 32 uploaders some waited 35 s (past the busy timeout) while later ones went
first.
"""

from __future__ import annotations

import threading
from collections import deque
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
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


class WriteQueue:
    """A lock handed to waiters in the order they came."""

    def __init__(self):
        self._guard = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._guard:
            if not self._held and not self._waiting:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True
        with self._guard:
            if turn.is_set():  # handed over as the wait ended
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().set()  # the lock passes to the next in line, still held
            else:
                self._held = False


def _configure_sqlite(engine: Engine) -> None:
    queue = WriteQueue()

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
        if immediate:
            if not queue.acquire(SQLITE_BUSY_TIMEOUT_MS / 1000):
                raise OperationalError("BEGIN IMMEDIATE", None, TimeoutError("waited too long for the other writers"))
            connection.info[WRITE_OPTION] = True
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _end_write(connection)
                raise
        else:
            connection.exec_driver_sql("BEGIN")

    def _end_write(connection) -> None:
        if connection.info.pop(WRITE_OPTION, False):
            queue.release()

    event.listen(engine, "commit", _end_write)
    event.listen(engine, "rollback", _end_write)


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
