"""The console's pages: one module per page, each exposing ``router`` (a FastAPI APIRouter).

To add a page, write ``bot/web/pages/<name>.py`` with ``router = APIRouter()`` and append it
to ROUTERS below; create_app includes every router with the CSRF check on unsafe methods.
"""

from __future__ import annotations

from fastapi import APIRouter

from bot.web.pages import audit, drafts, home, ledger, people

ROUTERS: list[APIRouter] = [
    home.router,
    ledger.router,
    drafts.router,
    people.router,
    audit.router,
]
