"""/api/v1/nodes and /api/v1/devices: the machines that uploaded, and their accelerators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from acceldoctor.portal.api.deps import Limit, Offset, Reader, ReadSession
from acceldoctor.portal.api.errors import STATUS_ERRORS
from acceldoctor.portal.api.schemas import DeviceOut, NodeDetailOut, NodeOut, Page
from acceldoctor.portal.queries import get_node, list_devices, list_nodes

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=STATUS_ERRORS)


@router.get("/nodes", response_model=Page[NodeOut])
def nodes(_caller: Reader, session: ReadSession, limit: Limit = 50, offset: Offset = 0) -> Page[NodeOut]:
    """Every node, by hostname, with its latest check or stress report."""
    return list_nodes(session, limit=limit, offset=offset)


@router.get("/nodes/{hostname}", response_model=NodeDetailOut)
def node(hostname: Annotated[str, Path(max_length=255)], _caller: Reader, session: ReadSession) -> NodeDetailOut:
    found = get_node(session, hostname)
    if found is None:
        raise HTTPException(404, f"no node {hostname!r}")
    return found


@router.get("/devices", response_model=Page[DeviceOut])
def devices(_caller: Reader, session: ReadSession, limit: Limit = 50, offset: Offset = 0,
            model: Annotated[str | None, Query(max_length=255, description="Only devices of this model.")] = None,
            host: Annotated[str | None, Query(max_length=255)] = None) -> Page[DeviceOut]:
    return list_devices(session, limit=limit, offset=offset, model=model, host=host)
