"""Signed out, ``/`` is the sign-in page; ``/login/<token>`` confirms a one-time link with a
POST (a GET never spends it: link previews in chat apps fetch URLs by themselves)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from bot.store.db import session_scope
from bot.web.app import page
from bot.web.auth import SIGNIN, find_token, optional_viewer, redeem_signin, sign_in, sign_out

router = APIRouter()


@router.get("/")
def home(request: Request) -> Response:
    if optional_viewer(request) is not None:
        return RedirectResponse("/ledger", status_code=303)
    return page(request, "signin.html")


@router.get("/login/{token}")
def login_form(request: Request, token: str) -> Response:
    now = request.app.state.clock.now()
    with session_scope(request.app.state.engine) as session:
        live = find_token(session, token, SIGNIN, now) is not None
    if not live:
        return page(request, "signin_refused.html", status=403)
    return page(request, "signin_confirm.html", {"token": token})


@router.post("/login/{token}")
def login(request: Request, token: str) -> Response:
    now = request.app.state.clock.now()
    with session_scope(request.app.state.engine) as session:
        identity_id = redeem_signin(session, token, now)
    if identity_id is None:
        return page(request, "signin_refused.html", status=403)
    sign_in(request, identity_id, now)
    return RedirectResponse("/ledger", status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse("/", status_code=303)
