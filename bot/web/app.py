"""``create_app``: the FastAPI app every HTTP need goes through.

app.state holds ``engine``, ``clock``, ``settings``, ``templates``, ``frontends`` and
``runtime`` (the sender, when it runs in this process); pages are routers listed in
:mod:`bot.web.pages` (each included with the CSRF check), beside the app's own: /healthz and
/metrics (bot.web.ops), calendar feeds (bot.web.feeds), one-tap action pages
(bot.web.actions); every frontend's own routes (Telegram webhook, WeCom callback) are
mounted as they are.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from bot.clock import Clock, SystemClock
from bot.settings import Settings
from bot.signing import derive_secret
from bot.web.auth import Forbidden, SignedOut, csrf_protect, csrf_token, optional_viewer

log = logging.getLogger("dutybot.web")
STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "dutybot_session"


def templates_dir() -> Path:
    """Source checkouts keep web templates at the top level; wheels carry them in ``bot``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "web_templates", here / "web_templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("web_templates/ not found")


def session_secret(settings: Settings) -> str:
    """The cookie-signing secret: configured, else derived from another configured secret;
    with none at all, a random one (sessions end with the process -- said in the log)."""
    if settings.web_secret is not None:
        return settings.web_secret.get_secret_value()
    for base in (settings.callback_secret, settings.telegram_token, settings.wecom_secret):
        if base is not None:
            return derive_secret(base.get_secret_value(), "web-session").hex()
    log.warning("no DUTYBOT_WEB_SECRET: sessions last only as long as this process")
    return secrets.token_hex(32)


def page(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    """Render a web template with what every page needs (viewer, CSRF token)."""
    templates: Jinja2Templates = request.app.state.templates
    ctx = {"viewer": optional_viewer(request), "csrf": csrf_token(request), **(context or {})}
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    frontends: Sequence[Any] = (),
) -> FastAPI:
    from bot.web import actions, feeds, ops
    from bot.web.pages import ROUTERS

    if engine is None:
        from bot.store.db import open_store

        engine = open_store(settings.database_url)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.state.clock = clock or SystemClock()
    app.state.settings = settings
    app.state.frontends = list(frontends)
    app.state.runtime = None  # the sender, when `dutybot run --web` serves it alongside
    templates = Jinja2Templates(directory=str(templates_dir()))
    templates.env.globals["static_version"] = hashlib.sha256(
        (STATIC / "htmx.min.js").read_bytes()
    ).hexdigest()[:8]
    app.state.templates = templates
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=int(settings.web_session_hours * 3600),
        same_site="lax",
        https_only=settings.web_url.startswith("https://"),
    )
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(ops.router)
    app.include_router(feeds.router)
    for router in [actions.router, *ROUTERS]:
        app.include_router(router, dependencies=[Depends(csrf_protect)])
    for frontend in frontends:
        for route in frontend.routes():
            app.router.routes.append(route)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, _exc: Forbidden) -> Response:
        return page(request, "refused.html", status=403)

    @app.exception_handler(SignedOut)
    async def _signed_out(request: Request, _exc: SignedOut) -> Response:
        return RedirectResponse("/", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (404, 405):
            return page(request, "not_found.html", status=exc.status_code)
        return HTMLResponse(str(exc.detail), status_code=exc.status_code)

    return app
