"""/api/v1/tokens: an admin creates, lists and revokes API tokens."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from acceldoctor.portal.api.deps import Admin, ReadSession, RowId, WriteSession
from acceldoctor.portal.api.errors import STATUS_ERRORS
from acceldoctor.portal.api.schemas import NewTokenOut, TokenIn, TokenOut
from acceldoctor.portal.auth import Role, create_token, revoke_token
from acceldoctor.portal.db.models import ApiToken

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=STATUS_ERRORS)


def _out(row: ApiToken) -> TokenOut:
    return TokenOut(id=row.id, name=row.name, role=row.role, created_at=row.created_at, revoked_at=row.revoked_at)


@router.post("", response_model=NewTokenOut, status_code=201)
def new_token(body: TokenIn, _caller: Admin, session: WriteSession) -> NewTokenOut:
    row, token = create_token(session, Role(body.role), body.name)
    session.commit()
    return NewTokenOut(**_out(row).model_dump(), token=token)


@router.get("", response_model=list[TokenOut])
def tokens(_caller: Admin, session: ReadSession) -> list[TokenOut]:
    return [_out(row) for row in session.scalars(select(ApiToken).order_by(ApiToken.id))]


@router.delete("/{token_id}", response_model=TokenOut)
def revoke(token_id: RowId, _caller: Admin, session: WriteSession) -> TokenOut:
    if not revoke_token(session, token_id):
        raise HTTPException(404, f"no token {token_id}")
    session.commit()
    return _out(session.get(ApiToken, token_id))
