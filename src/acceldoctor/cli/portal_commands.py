"""`acceldoctor serve` and `acceldoctor portal token create`: the portal's server side (needs the `portal` extra)."""

from __future__ import annotations

import importlib
import socket
import sys
from typing import Annotated

import typer

from acceldoctor.cli.errors import UsageError

SERVER_PACKAGES = ("fastapi", "uvicorn", "sqlalchemy", "alembic")
ROLES = ("uploader", "engineer", "admin")
MAX_CLOCK_SKEW_S = 10 * 365 * 86400.0  # "believe the nodes" (inf would overflow the server's date arithmetic)

portal_app = typer.Typer(help="Administer the portal (see `acceldoctor serve`).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for uploading and using the portal.", no_args_is_help=True)
portal_app.add_typer(token_app, name="token")

DbOption = Annotated[str | None, typer.Option(
    "--db", metavar="URL", help="The database: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB (default: a "
    "SQLite file in the user's data directory).")]


def require_server_packages() -> None:
    missing = []
    for name in SERVER_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UsageError(f"the portal needs packages that are not installed ({', '.join(missing)}): "
                         "pip install 'acceldoctor[portal]'")


def open_database(url: str | None):
    """The migrated database, or a one-line UsageError saying why it cannot be opened."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from acceldoctor.portal.db.engine import Database, migrate
    from acceldoctor.portal.settings import default_database_url, redacted

    url = url or default_database_url()
    try:
        database = Database(url)
        migrate(database)
    except ArgumentError:
        raise UsageError(f"--db {redacted(url)!r} is not a database URL (sqlite:///PATH or "
                         "postgresql://USER:PASSWORD@HOST/DB)") from None
    except (SQLAlchemyError, OSError, ImportError) as exc:
        raise UsageError(f"cannot open the database {redacted(url)}: {str(exc).splitlines()[0]}") from None
    return database


def _listening_socket(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def server_config(app, *, proxy_headers: bool, forwarded_allow_ips: str):
    """uvicorn's configuration for `serve`. With proxy_headers, a request from one of forwarded_allow_ips (a TLS
    proxy) has its scheme and client address taken from X-Forwarded-Proto and X-Forwarded-For: over https the
    login cookie is then marked Secure, and the request log names the real client."""
    import uvicorn

    from acceldoctor.portal.logs import uvicorn_log_config

    return uvicorn.Config(app, log_config=uvicorn_log_config(), access_log=False, lifespan="on",
                          proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips)


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="The address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.", min=0, max=65535)] = 8000,
    public_read: Annotated[bool, typer.Option(
        "--public-read", help="Let anyone read (lists, problems, /metrics) without a token; writes still need one.")
    ] = False,
    retention_days: Annotated[int | None, typer.Option(
        "--retention-days", min=1, help="Delete reports (and their events) received more than N days ago; problem "
        "counts are kept. Default: keep everything.")] = None,
    max_body_mb: Annotated[float, typer.Option(
        "--max-body-mb", min=0.001, help="Refuse request bodies larger than this (MiB).")] = 16.0,
    max_clock_skew_s: Annotated[float, typer.Option(
        "--max-clock-skew", metavar="SECONDS", min=0, max=MAX_CLOCK_SKEW_S,
        help="How far ahead of this server's clock a node's clock may be: a report dated later than its arrival "
        "plus this is taken as run when it arrived (the stored report keeps its own times). At most 10 years.")
    ] = 300.0,
    proxy_headers: Annotated[bool, typer.Option(
        "--proxy-headers/--no-proxy-headers", help="Behind a reverse proxy that terminates TLS: take the scheme and "
        "the client's address from X-Forwarded-Proto and X-Forwarded-For, from the addresses in "
        "--forwarded-allow-ips only (so that the login cookie is marked Secure over https).")] = True,
    forwarded_allow_ips: Annotated[str, typer.Option(
        "--forwarded-allow-ips", metavar="IPS", envvar="FORWARDED_ALLOW_IPS", help="The proxies whose X-Forwarded-* "
        "headers are believed: comma-separated addresses or networks (10.0.0.0/8). The default is a proxy on this "
        "machine; * believes anyone, which is right only when nothing but the proxy can reach the port.")
    ] = "127.0.0.1,::1",
) -> None:
    """Run the portal: nodes upload reports, failures are grouped into problems, developers file feedback.

    REST API under /api/v1 (described at /openapi.json), /healthz, /metrics. Logs are JSON lines on stderr.
    """
    require_server_packages()
    import uvicorn

    from acceldoctor.portal.app import create_app
    from acceldoctor.portal.logs import configure_logging
    from acceldoctor.portal.settings import PortalSettings, default_database_url, redacted

    url = db or default_database_url()
    database = open_database(url)
    settings = PortalSettings(database_url=database.url, public_read=public_read,
                              max_body_bytes=int(max_body_mb * 2**20), retention_days=retention_days,
                              max_clock_skew_s=max_clock_skew_s)
    sock = _listening_socket(host, port)
    configure_logging()
    import logging

    logging.getLogger("acceldoctor.portal").info("serving", extra={"fields": {
        "url": f"http://{host}:{sock.getsockname()[1]}", "database": redacted(url), "public_read": public_read,
        "retention_days": retention_days,
        "forwarded_allow_ips": forwarded_allow_ips if proxy_headers else None}})
    config = server_config(create_app(settings, database), proxy_headers=proxy_headers,
                           forwarded_allow_ips=forwarded_allow_ips)
    uvicorn.Server(config).run(sockets=[sock])


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="uploader (upload reports and feedback), engineer (also change problems "
                                           "and comment) or admin (everything).")],
    db: DbOption = None,
    name: Annotated[str, typer.Option(help="Who or what the token is for (shown as the author of comments).")] = "",
) -> None:
    """Create an API token and print it (alone, on the last line). Only its hash is stored: keep it."""
    if role not in ROLES:
        raise UsageError(f"unknown --role {role!r}; choose one of {', '.join(ROLES)}")
    require_server_packages()
    from sqlalchemy.exc import SQLAlchemyError

    from acceldoctor.portal.auth import Role, create_token
    from acceldoctor.portal.settings import redacted

    database = open_database(db)
    try:
        with database.write_session() as session:
            row, token = create_token(session, Role(role), name)
            session.commit()
            token_id = row.id
    except SQLAlchemyError as exc:
        raise UsageError(f"cannot store the token: {str(exc).splitlines()[0]}") from None
    sys.stdout.write(f"created {role} token {token_id} in {redacted(database.url)}; it is shown only now:\n{token}\n")
