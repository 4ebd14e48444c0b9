"""The server side of benchmarks/portal_load.py: `acceldoctor serve` as a subprocess on a free port, tokens made with
`acceldoctor portal token create`, and a fresh PostgreSQL database made for a run and dropped after."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_token(db: str, role: str) -> str:
    done = subprocess.run(["acceldoctor", "portal", "token", "create", "--role", role, "--db", db, "--name",
                           f"load {role}"], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


class Server:
    """`acceldoctor serve` on a free port, its log in a file; stopped on exit."""

    def __init__(self, db: str, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.process = subprocess.Popen(["acceldoctor", "serve", "--db", db, "--port", str(self.port)],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}); see {log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer /healthz in 60 s; see {log}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def create_postgres_database(url: str) -> tuple[str, object]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from acceldoctor.portal.settings import sqlalchemy_url

    admin = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    name = f"acceldoctor_load_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    fresh = make_url(sqlalchemy_url(url)).set(database=name).render_as_string(hide_password=False)
    return fresh.replace("postgresql+psycopg://", "postgresql://"), drop
