"""FastAPI dependencies: the portal's state, database sessions, and who the caller is (tokens and roles)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from acceldoctor.portal.auth import Caller, Role, find_caller
from acceldoctor.portal.db.engine import Database
from acceldoctor.portal.metrics import ProcessCounters
from acceldoctor.portal.settings import PortalSettings

bearer = HTTPBearer(auto_error=False, description="A token from `acceldoctor portal token create`.")


@dataclass
class PortalState:
    settings: PortalSettings
    database: Database
    counters: ProcessCounters


def portal_state(request: Request) -> PortalState:
    return request.app.state.portal


State = Annotated[PortalState, Depends(portal_state)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def read_session(state: State) -> Iterator[Session]:
    with state.database.read_session() as session:
        yield session


def write_session(state: State) -> Iterator[Session]:
    """A write transaction; the route commits it before answering (a failed commit is a 503: the client retries)."""
    with state.database.write_session() as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]
WriteSession = Annotated[Session, Depends(write_session)]


NO_TOKEN = "a valid token is needed: send the header `Authorization: Bearer TOKEN`"
INVALID_TOKEN = "the token is not valid (unknown, malformed or revoked)"


def role_refusal(needed: Role, caller: Caller) -> str:
    return f"this needs the {needed.value} role (or higher); the token is {caller.role.value}"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _authenticate(state: PortalState, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    if credentials is None:
        raise _unauthorized(NO_TOKEN)
    caller = find_caller(state.database, credentials.credentials)
    if caller is None:
        raise _unauthorized(INVALID_TOKEN)
    return caller


def require(role: Role):
    """The dependency of a route that needs `role` or a higher one. Tests find each route's role through
    `required_role`, so a new write route cannot go unchecked."""

    def dependency(state: State, credentials: Credentials) -> Caller:
        caller = _authenticate(state, credentials)
        if not caller.role.allows(role):
            raise HTTPException(403, role_refusal(role, caller))
        return caller

    dependency.required_role = role
    return dependency


def reader(state: State, credentials: Credentials) -> Caller | None:
    """Reads need a valid token, unless the server runs with --public-read (a token sent must still be valid)."""
    if credentials is None and state.settings.public_read:
        return None
    return _authenticate(state, credentials)


reader.required_role = None
Reader = Annotated[Caller | None, Depends(reader)]
Uploader = Annotated[Caller, Depends(require(Role.UPLOADER))]
Engineer = Annotated[Caller, Depends(require(Role.ENGINEER))]
Admin = Annotated[Caller, Depends(require(Role.ADMIN))]


def required_role(route: APIRoute) -> Role | None:
    """The role a route's require(...) dependency asks for; None for a read, or a route without one."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if hasattr(dependency.call, "required_role"):
            return dependency.call.required_role
        stack.extend(dependency.dependencies)
    return None


Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=2**62, description="Items to skip.")]
RowId = Annotated[int, Path(ge=1, le=2**62)]
