"""``dutybot invite NAME``: print a one-time, expiring deep link that binds a chat to a person.

Added to the main app by :func:`register`.  Like bot.reports.cli, the command is built
inside ``register`` (help rendered in the configured language then), so this module keeps
real annotations for typer instead of ``from __future__ import annotations``.
"""

import asyncio
import logging
from datetime import timedelta
from typing import Annotated

import typer

from bot.settings import Settings, get_settings
from bot.texts import phrase

log = logging.getLogger("dutybot.cli")


def bot_username(settings: Settings) -> str | None:
    """From the settings, else from getMe (the token is needed for that, never printed)."""
    if settings.telegram_bot_username:
        return settings.telegram_bot_username.lstrip("@")
    if settings.telegram_token is None:
        return None
    from bot.adapters.telegram import TelegramAdapter

    async def ask() -> str | None:
        assert settings.telegram_token is not None
        adapter = TelegramAdapter(
            settings.telegram_token.get_secret_value(),
            base_url=settings.telegram_base_url,
            connect_timeout=settings.telegram_connect_timeout,
            read_timeout=settings.telegram_read_timeout,
        )
        async with adapter:
            return adapter.bot.username

    try:
        return asyncio.run(ask())
    except Exception as exc:  # any failure means: tell the user how to configure it
        log.warning("getMe failed: %s", type(exc).__name__)
        return None


def register(app: typer.Typer) -> None:
    """Add ``invite`` to the main ``dutybot`` app."""
    lang = get_settings().lang

    @app.command("invite", help=phrase("chat_cli", "invite_help", lang))
    def invite(
        name: Annotated[str, typer.Argument(help=phrase("chat_cli", "invite_help_name", lang))],
        schedule: Annotated[
            str | None,
            typer.Option("--schedule", help=phrase("chat_cli", "invite_help_schedule", lang)),
        ] = None,
    ) -> None:
        from sqlmodel import col, select

        from bot.adapters.telegram_links import start_link
        from bot.clock import SystemClock
        from bot.conversation.invites import create_invite
        from bot.materialise import schedule_time
        from bot.store.db import open_store, session_scope
        from bot.store.models import Person, Schedule

        settings = get_settings()
        username = bot_username(settings)
        # the same one-time code binds a WeCom member who sends it to the app (绑定 <code>)
        wecom = bool(settings.wecom_corp_id) and settings.wecom_secret is not None
        if not username and not wecom:
            typer.echo(phrase("chat_cli", "no_username", lang), err=True)
            raise typer.Exit(2)
        now = SystemClock().now()  # the command line is the edge where the clock is read
        engine = open_store(settings.database_url)
        try:
            with session_scope(engine) as session:
                query = select(Person).where(Person.name == name, col(Person.active).is_(True))
                if schedule:
                    query = query.where(Person.schedule_id == schedule)
                people = session.exec(query).all()
                if not people:
                    typer.echo(phrase("chat_cli", "unknown_person", lang, name=name), err=True)
                    raise typer.Exit(1)
                if len(people) > 1:
                    found_in = sorted(p.schedule_id for p in people)
                    said = phrase(
                        "chat_cli", "ambiguous_person", lang, name=name, schedules=found_in
                    )
                    typer.echo(said, err=True)
                    raise typer.Exit(1)
                person = people[0]
                token, row = create_invite(
                    session,
                    person=person,
                    now=now,
                    ttl=timedelta(hours=settings.invite_ttl_hours),
                    actor="cli",
                )
                found = session.get(Schedule, person.schedule_id)
                assert found is not None
                expires = row.expires_at.astimezone(schedule_time(found).tz)
                typer.echo(
                    phrase(
                        "chat_cli",
                        "invite_link",
                        lang,
                        name=person.name,
                        schedule=person.schedule_id,
                        link="\n".join(
                            ([start_link(username, token)] if username else [])
                            + (
                                [phrase("wecom", "bind_instruction", lang, token=token)]
                                if wecom
                                else []
                            )
                        ),
                        expires=expires.strftime("%Y-%m-%d %H:%M"),
                    )
                )
        finally:
            engine.dispose()
