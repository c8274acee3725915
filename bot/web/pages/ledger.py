"""The ledger (台账) dashboard at ``/ledger`` -- a placeholder listing the viewer's lists and
roles, for the webpages branch to replace with the real dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bot.web.app import page
from bot.web.auth import Viewer, current_viewer, require_member

router = APIRouter()


@router.get("/ledger")
def ledger(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]) -> Response:
    return page(request, "ledger.html", {"me": viewer})


@router.get("/s/{schedule_id}")
def schedule_home(
    request: Request, schedule_id: str, viewer: Annotated[Viewer, Depends(require_member)]
) -> Response:
    """A list the viewer belongs to (others get the 403 page)."""
    return page(request, "ledger.html", {"me": viewer, "schedule_id": schedule_id})
