"""``dutybot web`` and ``dutybot login-link``, added to the main app by :func:`register`.

Like bot.reports.cli, the commands are built inside ``register`` (help rendered in the
configured language then), so this module keeps real annotations for typer instead of
``from __future__ import annotations``.  ``dutybot run --web`` (bot.cli) shares
:func:`web_server` and :func:`serve_until_stopped`.
"""

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from bot.settings import Settings, get_settings
from bot.texts import phrase


def web_server(
    settings: Settings,
    *,
    db: Any,
    clock: Any,
    frontends: Sequence[Any],
    runtime: Any = None,
    host: str | None = None,
    port: int | None = None,
) -> Any:
    """The app (with the frontends' routes, and the sender for /healthz) under uvicorn."""
    from bot.web.app import create_app
    from bot.web.server import WebServer

    app = create_app(settings, engine=db, clock=clock, frontends=frontends)
    app.state.runtime = runtime
    return WebServer(
        app, host=host or settings.web_host, port=settings.web_port if port is None else port
    )


def serve_until_stopped(
    settings: Settings,
    server: Any,
    *,
    runtime: Any,
    frontends: Sequence[Any],
) -> None:
    """Start the frontends (and the runtime, and the web server) and run until a signal;
    a port that cannot be bound is one line and exit 2."""
    from bot.runtime import serve
    from bot.web.server import PortTaken

    async def start() -> None:
        if server is not None:  # bound by now (serve binds first): the URL has the real port
            url, public = server.url, settings.web_url
            typer.echo(phrase("web", "serving", settings.lang, url=url, public=public))
        for frontend in frontends:
            await frontend.start()

    async def stop() -> None:
        for frontend in reversed(frontends):
            await frontend.stop()

    async def main() -> None:
        await serve(runtime, start_frontend=start, stop_frontend=stop, web=server)

    try:
        asyncio.run(main())
    except PortTaken as exc:
        detail = exc.strerror or str(exc)
        typer.echo(
            phrase(
                "web",
                "port_taken",
                settings.lang,
                host=server.host,
                port=server.port,
                detail=detail,
            ),
            err=True,
        )
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add ``web`` and ``login-link`` to the main ``dutybot`` app."""
    lang = get_settings().lang

    @app.command("web", help=phrase("web", "web_help", lang))
    def web(
        host: Annotated[
            str | None, typer.Option("--host", help=phrase("web", "help_host", lang))
        ] = None,
        port: Annotated[
            int | None,
            typer.Option("--port", min=0, max=65535, help=phrase("web", "help_port", lang)),
        ] = None,
    ) -> None:
        """The web process: pages and endpoints, and the receive side of every platform that
        posts to a URL (Telegram's webhook, WeCom's callback).  Polling and DingTalk's stream
        are `dutybot run`'s: two pollers of one bot would fight over its updates."""
        from bot.adapters import configured
        from bot.cli import _open_store_waiting
        from bot.clock import SystemClock

        settings = get_settings()
        clock = SystemClock()
        db = _open_store_waiting(settings.database_url)
        built = [p.build(settings=settings, db=db, clock=clock) for p in configured(settings)]
        receiving = [f for f in built if f.routes()]
        server = web_server(settings, db=db, clock=clock, frontends=receiving, host=host, port=port)
        serve_until_stopped(settings, server, runtime=None, frontends=receiving)

    @app.command("login-link", help=phrase("web", "login_help", lang))
    def login_link(
        name: Annotated[str, typer.Argument(help=phrase("web", "login_help_name", lang))],
        schedule: Annotated[
            str | None, typer.Option("--schedule", help=phrase("web", "help_schedule", lang))
        ] = None,
    ) -> None:
        """A one-time sign-in URL for the first admin (everyone else sends /web in chat)."""
        from bot.clock import SystemClock
        from bot.store.db import open_store, session_scope
        from bot.web.links import person_named, signin_link

        settings = get_settings()
        now = SystemClock().now()  # the command line is the edge where the clock is read
        engine = open_store(settings.database_url)
        try:
            with session_scope(engine) as session:
                person = person_named(session, name, schedule)  # a wrong name: said at the edge
                url = signin_link(
                    session,
                    person=person,
                    base_url=settings.web_url,
                    minutes=settings.web_signin_minutes,
                    now=now,
                )
        finally:
            engine.dispose()
        minutes = int(settings.web_signin_minutes)
        typer.echo(phrase("web", "login_link", lang, name=person.name, url=url, minutes=minutes))
